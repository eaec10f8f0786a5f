"""Signals AmoCRM's side sends so the pipeline can react without amocrm importing it."""

from django.dispatch import Signal

# Sent (after commit) when an account gets a working token: OAuth pair or long-lived.
# Arguments: account_id.
account_connected = Signal()
