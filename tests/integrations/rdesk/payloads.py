"""Loads RDESK payload fixtures from ``tests/fixtures/rdesk/``."""

import json
from pathlib import Path

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "rdesk"


def load_item(name: str) -> dict:
    """The single item of a fixture file (RDESK posts a JSON array of items)."""
    items = json.loads((FIXTURES / name).read_text(encoding="utf-8"))
    assert len(items) == 1, f"{name} should hold exactly one item"
    return items[0]
