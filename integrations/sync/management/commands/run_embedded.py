"""The embedded mode in one command: emulator, demo account, admin user, worker and web.

No server is needed: SQLite and the file-system broker are the defaults, and AmoCRM is
the local emulator, connected through a real OAuth code exchange at every start.
"""

import os
import secrets
import signal
import subprocess
import sys
import time

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.utils.translation import gettext

from integrations.amocrm.emulator.server import EmulatorServer
from integrations.amocrm.models import Account
from integrations.amocrm.services import account_connect_with_code, catalogue_refresh
from integrations.sync.models import Flow

DEMO_ACCOUNT = "Demo (emulator)"


class Command(BaseCommand):
    @property
    def help(self) -> str:
        # Read when the parser is built, so it speaks the active language; argparse cannot
        # take a lazy string.
        return gettext(
            "Run the hub locally: AmoCRM emulator, Celery worker with beat, and the web server."
        )

    def add_arguments(self, parser):
        parser.add_argument(
            "--host",
            default=os.environ.get("HUB_HOST", "127.0.0.1"),
            help=gettext("Address the web server listens on (HUB_HOST)."),
        )
        parser.add_argument(
            "--port",
            type=int,
            default=int(os.environ.get("HUB_PORT", "8000")),
            help=gettext("Port of the web server (HUB_PORT)."),
        )
        parser.add_argument(
            "--emulator-port",
            type=int,
            default=int(os.environ.get("EMULATOR_PORT", "8765")),
            help=gettext("Port of the AmoCRM emulator (EMULATOR_PORT)."),
        )

    def handle(self, *args, host, port, emulator_port, **options):
        hub_url = f"http://{host}:{port}"
        emulator = EmulatorServer(
            host="127.0.0.1",
            port=emulator_port,
            redirect_uri=f"{hub_url}/amocrm/oauth/callback/",
        ).start()
        account = self._demo_account(emulator, hub_url)
        password = self._admin_password()
        (settings.VAR_DIR / "broker" / "queue").mkdir(parents=True, exist_ok=True)
        (settings.VAR_DIR / "broker" / "processed").mkdir(parents=True, exist_ok=True)
        children = [
            self._spawn(
                "celery",
                "-A",
                "hub",
                "worker",
                "--beat",
                "--pool=threads",
                "--concurrency=2",
                "--loglevel=INFO",
                f"--schedule={settings.VAR_DIR / 'celerybeat-schedule'}",
            ),
            self._spawn(
                "gunicorn",
                "hub.wsgi",
                f"--bind={host}:{port}",
                "--workers=2",
                "--access-logfile=-",
            ),
        ]
        running = gettext(
            "amo-hub is running (embedded mode)\n"
            "  intake:   %(hub)s/zdrav/booked  and  %(hub)s/zdrav/mc\n"
            "  admin:    %(hub)s/admin/   user: admin   password: %(password)s\n"
            "  AmoCRM:   emulator at %(emulator)s (account '%(account)s')\n"
            "  see a lead: curl -s %(emulator)s/_emulator/leads/23392663\n"
            "Press Ctrl+C to stop."
        ) % {
            "hub": hub_url,
            "password": password,
            "emulator": emulator.base_url,
            "account": account,
        }
        self.stdout.write(self.style.SUCCESS(f"\n{running}\n"))
        self._wait(children)
        emulator.stop()

    def _demo_account(self, emulator: EmulatorServer, hub_url: str) -> Account:
        account, _ = Account.objects.update_or_create(
            name=DEMO_ACCOUNT,
            defaults={
                "subdomain": "emulator",
                "base_url": emulator.base_url,
                "client_id": "emulator-client",
                "client_secret": "emulator-secret",
                "redirect_uri": f"{hub_url}/amocrm/oauth/callback/",
                "long_lived_token": "",
            },
        )
        # The emulator forgets its tokens on restart: connect again with a fresh code.
        account_connect_with_code(account=account, code=emulator.state.issue_code())
        catalogue_refresh(account=account)
        Flow.objects.filter(account__isnull=True).update(account=account)
        return account

    @staticmethod
    def _admin_password() -> str:
        password = secrets.token_urlsafe(12)
        user, _ = get_user_model().objects.get_or_create(
            username="admin", defaults={"is_staff": True, "is_superuser": True}
        )
        user.set_password(password)
        user.save()
        return password

    @staticmethod
    def _spawn(program: str, *args: str) -> subprocess.Popen:
        executable = os.path.join(os.path.dirname(sys.executable), program)
        return subprocess.Popen([executable, *args], cwd=settings.BASE_DIR)

    @staticmethod
    def _wait(children: list[subprocess.Popen]) -> None:
        try:
            while all(child.poll() is None for child in children):
                time.sleep(0.5)
        except KeyboardInterrupt:
            pass
        finally:
            for child in children:
                if child.poll() is None:
                    child.send_signal(signal.SIGTERM)
            for child in children:
                try:
                    child.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    child.kill()
