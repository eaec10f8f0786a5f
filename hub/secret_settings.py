"""Where the settings find their secrets: the environment, else a secrets directory.

In the embedded mode (no ``DATABASE_URL``) a missing secret has a default, so ``make run``
needs no set-up. In production a missing one stops the start with one message naming
every missing variable and how to create it.
"""

from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured

from hub.secrets_init import secret_file_read

# How to create each value, for the start-up message.
HOW_TO_CREATE = {
    "SECRET_KEY": "python3 -c 'import secrets; print(secrets.token_urlsafe(50))'",
    "HUB_ENCRYPTION_KEYS": (
        "python3 -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'"
    ),
}


class SecretSettings:
    """Reads secret settings and collects the ones production lacks."""

    def __init__(self, env, *, embedded: bool, secrets_dir: str = ""):
        self.env = env
        self.embedded = embedded
        self.secrets_dir = Path(secrets_dir) if secrets_dir else None
        self.missing: list[str] = []

    def _file(self, name: str) -> str:
        return secret_file_read(self.secrets_dir / name) if self.secrets_dir else ""

    def value(self, variable: str, *, file: str, embedded_default: str = "") -> str:
        """The variable, else its file in the secrets directory, else the embedded default."""
        value = self.env(variable, default="") or self._file(file)
        if value and value != embedded_default:
            return value
        if self.embedded:
            return embedded_default
        self.missing.append(variable)
        return ""

    def fernet_keys(self, variable: str, *, file: str) -> list[str]:
        """Comma-separated Fernet keys; an empty list in the embedded mode when unset."""
        keys = [key.strip() for key in self.value(variable, file=file).split(",") if key.strip()]
        for position, key in enumerate(keys, start=1):
            try:
                Fernet(key)
            except ValueError:
                # The key itself is never echoed: it is a secret even when malformed.
                raise ImproperlyConfigured(
                    f"{variable}: key {position} of {len(keys)} is not a Fernet key "
                    f"(32 url-safe base64-encoded bytes). Create one with "
                    f"{HOW_TO_CREATE[variable]}"
                ) from None
        return keys

    def database_url(self, url: str, *, password_file: str) -> str:
        """``url`` with the password from the secrets directory when it carries none."""
        parts = urlsplit(url)
        password = self._file(password_file)
        # An empty password counts as none: compose writes "user:@host" for an unset one.
        if parts.password or not (password and parts.scheme.startswith("postgres")):
            return url
        if not parts.username:
            return url
        host = parts.netloc.rpartition("@")[2]
        netloc = f"{parts.username}:{quote(password, safe='')}@{host}"
        return urlunsplit(parts._replace(netloc=netloc))

    def check(self) -> None:
        """Raises one ImproperlyConfigured naming every missing secret, if any."""
        if not self.missing:
            return
        lines = [
            f"{name} is not set (create one with: {HOW_TO_CREATE[name]})." for name in self.missing
        ]
        lines.append(
            "Set each in .env, or set HUB_SECRETS_DIR to a directory (a volume) and run "
            "`python -m hub.secrets_init DIR` once to create the missing files there."
        )
        raise ImproperlyConfigured("Production mode (DATABASE_URL is set): " + " ".join(lines))


def https_origins(server_names: str, port: str) -> list[str]:
    """The HTTPS origins of nginx's server names (space- or comma-separated) on ``port``."""
    suffix = "" if port in ("", "443") else f":{port}"
    return [f"https://{name}{suffix}" for name in server_names.replace(",", " ").split()]
