"""Creates the secrets a deployment lacks, once, as files in a directory (a volume).

``python -m hub.secrets_init DIR`` writes each missing file of ``SECRET_FILES`` (mode
0600), never touches one that exists, and prints the names it created, one a line (never
a value). The settings read a variable that is unset from the file of its name in
``HUB_SECRETS_DIR``, so an upgrade from the old service keeps its ``.env`` as it is.

Django is not imported: the command runs before the database or the settings exist.
"""

import argparse
import os
import secrets
import sys
from collections.abc import Callable
from pathlib import Path

from cryptography.fernet import Fernet


def _postgres_password() -> str:
    # Hex only: the password goes into DATABASE_URL, where it must need no quoting.
    return secrets.token_hex(24)


# File name -> how a new value is made.
SECRET_FILES: dict[str, Callable[[], str]] = {
    "secret_key": lambda: secrets.token_urlsafe(50),
    "encryption_keys": lambda: Fernet.generate_key().decode(),
    "postgres_password": _postgres_password,
}


def secret_file_create(path: Path, value: str) -> bool:
    """Writes ``value`` to ``path`` (mode 0600) unless the file exists; True if written.

    The file appears whole or not at all (written aside, then linked into place), so
    processes starting together all read the one value that won.
    """
    if path.exists():
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    aside = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    descriptor = os.open(aside, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "w") as handle:
            handle.write(value + "\n")
        os.link(aside, path)
    except FileExistsError:
        return False
    finally:
        aside.unlink(missing_ok=True)
    return True


def secret_file_read(path: Path) -> str:
    """The file's value without surrounding white space ("" when there is no file)."""
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        return ""


def secrets_create(directory: Path) -> list[str]:
    """Creates every missing secret file in ``directory``; the names created."""
    return [
        name
        for name, generate in SECRET_FILES.items()
        if secret_file_create(directory / name, generate())
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m hub.secrets_init",
        description="Create the missing secret files (" + ", ".join(SECRET_FILES) + ") once.",
    )
    parser.add_argument("directory", type=Path, help="the secrets directory (HUB_SECRETS_DIR)")
    options = parser.parse_args(argv)
    for name in secrets_create(options.directory):
        print(name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
