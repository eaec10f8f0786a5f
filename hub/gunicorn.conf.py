"""gunicorn's settings for the hub: `gunicorn -c hub/gunicorn.conf.py` (Dockerfile, compose).

Anything here can be changed without a rebuild: WEB_CONCURRENCY (workers),
GUNICORN_WORKER_CLASS and GUNICORN_THREADS below, or GUNICORN_CMD_ARGS in .env, which
overrides this file (e.g. GUNICORN_CMD_ARGS="--workers=4 --timeout=60").

The default is gunicorn's own asgi worker, one process, with hub/asgi.py: RDESK's POSTs
are answered in its event loop and the items of requests that arrive together inserted
by one statement (integrations/sync/intake_batches.py); the admin, health and metrics are
Django's WSGI app in GUNICORN_THREADS threads (a2wsgi). GUNICORN_WORKER_CLASS=gthread
serves everything with Django's WSGI app in threads, as before. Change the worker class
with GUNICORN_WORKER_CLASS, not --worker-class in GUNICORN_CMD_ARGS: the application
(hub.asgi or hub.wsgi) is chosen here from that variable. Chosen by
`make bench-intake` (the README's "gunicorn" section has the figures and how to measure).
"""

import gc
import os

bind = os.environ.get("GUNICORN_BIND", "0.0.0.0:8000")
workers = int(os.environ.get("WEB_CONCURRENCY", "1"))
worker_class = os.environ.get("GUNICORN_WORKER_CLASS", "asgi")
# The ASGI application for the asgi worker; Django's WSGI one for the others.
wsgi_app = "hub.asgi:application" if worker_class == "asgi" else "hub.wsgi:application"
# gthread: each thread keeps its own database connection (CONN_MAX_AGE), 8 of
# PostgreSQL's 100. The asgi worker has one thread for its loop; hub/asgi.py runs Django's
# own in a pool of GUNICORN_THREADS (settings.HUB_WEB_THREADS).
threads = int(os.environ.get("GUNICORN_THREADS", "8")) if worker_class == "gthread" else 1
# On the compose network nginx is the only client (the port is published nowhere): trust
# its X-Forwarded-Proto.
forwarded_allow_ips = os.environ.get("GUNICORN_FORWARDED_ALLOW_IPS", "*")
# Long, as an admin action may wait on AmoCRM (its read timeout is 30 s).
timeout = 120
graceful_timeout = 30
keepalive = 5
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None
# A worker is replaced now and then, so a slow leak never grows without bound.
# At a burst's 600 requests a second, 200,000 is every five minutes or so: a replacement
# (the pool reopened, the flows read again) costs the intake a short pause each time.
max_requests = 200000
max_requests_jitter = 20000
# The app is loaded once in the master and forked: workers share its memory pages.
preload_app = True

accesslog = os.environ.get("GUNICORN_ACCESS_LOG", "-")
logger_class = "hub.gunicorn_logging.ScrubbingLogger"
access_log_format = '%(h)s "%(r)s" %(s)s %(b)s %(M)sms "%(f)s" "%(a)s"'


def pre_fork(server, worker):
    # The preloaded app's objects (Django, the apps, their modules) live as long as the
    # process: frozen, the garbage collector never walks them again. Its full collections
    # in a worker then take a fraction of the time (they were the intake's slowest
    # answers), and the shared pages are not copied by its bookkeeping.
    gc.freeze()


def post_fork(server, worker):
    # A connection opened in the master (preload) must not be shared by the forks.
    from django.db import connections

    connections.close_all()


def child_exit(server, worker):
    # In the master: a worker that ended (--max-requests, a crash) leaves its metrics
    # files; its counts go into the host's archive, so the directory does not grow.
    from integrations.monitoring.metrics import process_files_archive

    process_files_archive(worker.pid)
