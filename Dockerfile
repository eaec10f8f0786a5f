# amo-hub: the image of the web, worker and beat services (see docker-compose.yml).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# A non-root user; its home holds gunicorn's control socket (gunicornc).
RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --create-home --home-dir /home/app \
        --shell /usr/sbin/nologin app

WORKDIR /app

# Dependencies first, so a code change does not reinstall them (psycopg[binary] brings
# its own libpq: no build tools needed).
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt

COPY . .
# Static files into var/static (STATIC_ROOT), served by WhiteNoise. collectstatic needs no
# database and no secret; the key given here exists only for this command.
RUN SECRET_KEY=collectstatic-at-build-time python manage.py collectstatic --noinput --verbosity 0 \
    && chown app:app var

USER app
EXPOSE 8000

# gunicorn's settings, read by this command and by docker-compose.yml's web command
# (`gunicorn hub.wsgi`): bind on all interfaces; trust X-Forwarded-Proto from any peer
# (the port is published nowhere: on the compose network nginx is its only client); a
# long timeout, as an admin action may wait on AmoCRM. WEB_CONCURRENCY is the number of
# sync workers (about 2 x cores + 1): set it in .env to change it. GUNICORN_CMD_ARGS set
# in .env replaces this whole line.
ENV WEB_CONCURRENCY=3 \
    GUNICORN_CMD_ARGS="--bind=0.0.0.0:8000 --forwarded-allow-ips=* --timeout=120 --graceful-timeout=30 --worker-tmp-dir=/dev/shm --max-requests=1000 --max-requests-jitter=100 --access-logfile=-"

# No HEALTHCHECK here: the worker and beat run this image too; docker-compose.yml checks web.
CMD ["gunicorn", "hub.wsgi"]
