"""gunicorn's settings for the hub: `gunicorn -c hub/gunicorn.conf.py` (Dockerfile, compose).

Anything here can be changed without a rebuild: WEB_CONCURRENCY (workers) and
GUNICORN_THREADS below, or GUNICORN_CMD_ARGS in .env, which overrides this file
(e.g. GUNICORN_CMD_ARGS="--workers=4 --timeout=60").

Worker class and count, chosen by `make bench-intake` (wrk -t1 -c16 -d20s, the sample
booking, PostgreSQL, Redis and a Celery worker delivering to the emulator, all on the same
2-core machine; requests/s, p99, web RSS in all / PSS, web CPU per request; * default):

    gthread, 1 worker x 8 threads   293-412/s  p99 111-138 ms  181 MB / 133 MB  1.9-2.7 ms  *
    gthread, 1 worker x 4 threads   215/s      p99 138 ms      179 MB / 114 MB  3.3 ms
    gthread, 1 worker x 16 threads  234/s      p99 194 ms      183 MB / 135 MB  3.5 ms
    gthread, 2 workers x 4 threads  235/s      p99 185 ms      266 MB / 149 MB  3.8 ms
    sync, 3 workers (before)         39/s      p99 629 ms      320 MB / 158 MB  6.4 ms

A request mostly waits on PostgreSQL and Redis round trips, which threads overlap; a
second process adds ~80 MB and, with the GIL's one core per process, no throughput while
PostgreSQL and the worker share the two cores. gevent was not tried: psycopg's waits would
need its own green support, and threads already overlap the waits.
"""

import os

bind = os.environ.get("GUNICORN_BIND", "0.0.0.0:8000")
workers = int(os.environ.get("WEB_CONCURRENCY", "1"))
worker_class = os.environ.get("GUNICORN_WORKER_CLASS", "asgi")
# The ASGI application for the asgi worker; Django's WSGI one for the others.
wsgi_app = "hub.asgi:application" if worker_class == "asgi" else "hub.wsgi:application"
# Each thread keeps its own database connection (CONN_MAX_AGE): 8 of PostgreSQL's 100.
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


def child_exit(server, worker):
    # In the master: a worker that ended (--max-requests, a crash) leaves its metrics
    # files; its counts go into the host's archive, so the directory does not grow.
    from integrations.monitoring.metrics import process_files_archive

    process_files_archive(worker.pid)
