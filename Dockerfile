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
# Importing the apps makes the metrics' counter files: those of this build step go, and
# var/metrics (a volume web, worker and beat share in compose) is left to the app user.
RUN SECRET_KEY=collectstatic-at-build-time python manage.py collectstatic --noinput --verbosity 0 \
    && rm -rf var/metrics \
    && install -d -o app -g app var/metrics \
    && chown -R app:app var \
    && install -d -o app -g app -m 0700 /run/amohub-secrets

USER app
EXPOSE 8000

# gunicorn's settings are hub/gunicorn.conf.py (workers, worker class, timeouts, the
# scrubbing access log): WEB_CONCURRENCY and GUNICORN_THREADS there, or GUNICORN_CMD_ARGS in
# .env, which overrides the file. /run/amohub-secrets is created owned by app, so the named
# volume mounted there (docker-compose.yml) starts writable by the secrets service.
# No HEALTHCHECK here: the worker and beat run this image too; docker-compose.yml checks web.
CMD ["gunicorn", "-c", "hub/gunicorn.conf.py"]
