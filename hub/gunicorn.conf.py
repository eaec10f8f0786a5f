"""gunicorn's settings for the hub: `gunicorn -c hub/gunicorn.conf.py` (Dockerfile, compose).

Anything here can be changed without a rebuild: WEB_CONCURRENCY (workers) and
GUNICORN_THREADS below, or GUNICORN_CMD_ARGS in .env, which overrides this file
(e.g. GUNICORN_CMD_ARGS="--workers=4 --timeout=60").

Worker class and count, measured with `make bench-intake` (wrk -t1 -c16 -d20s, the sample
booking, PostgreSQL and a Celery worker on the same 2-core machine; figures in
tests/benchmarks/intake_wrk.py's docstring): MEASUREMENTS_PLACEHOLDER
"""

import os

wsgi_app = "hub.wsgi:application"
bind = os.environ.get("GUNICORN_BIND", "0.0.0.0:8000")
workers = int(os.environ.get("WEB_CONCURRENCY", "3"))
worker_class = os.environ.get("GUNICORN_WORKER_CLASS", "sync")
threads = int(os.environ.get("GUNICORN_THREADS", "1"))
# On the compose network nginx is the only client (the port is published nowhere): trust
# its X-Forwarded-Proto.
forwarded_allow_ips = os.environ.get("GUNICORN_FORWARDED_ALLOW_IPS", "*")
# Long, as an admin action may wait on AmoCRM (its read timeout is 30 s).
timeout = 120
graceful_timeout = 30
keepalive = 5
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None
# A worker is replaced now and then, so a slow leak never grows without bound.
max_requests = 20000
max_requests_jitter = 2000
# The app is loaded once in the master and forked: workers share its memory pages.
preload_app = True

accesslog = os.environ.get("GUNICORN_ACCESS_LOG", "-")
logger_class = "hub.gunicorn_logging.ScrubbingLogger"
access_log_format = '%(h)s "%(r)s" %(s)s %(b)s %(M)sms "%(f)s" "%(a)s"'


def post_fork(server, worker):
    # A connection opened in the master (preload) must not be shared by the forks.
    from django.db import connections

    connections.close_all()
