"""Fixtures for the AmoCRM connection tests: an account not yet connected to the emulator."""

import pytest

from integrations.amocrm.emulator.state import EmulatorConfig
from integrations.amocrm.models import Account
from tests.factories import AccountFactory


@pytest.fixture
def new_account(db, emulator) -> Account:
    """The emulator's integration entered in the admin, but never connected."""
    config = emulator.state.config
    return AccountFactory(
        name="Zdravnitsa",
        base_url=emulator.base_url,
        client_id=config.client_id,
        client_secret=config.client_secret,
        redirect_uri=EmulatorConfig().redirect_uri,
        state=Account.State.DISCONNECTED,
    )
