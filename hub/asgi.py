"""ASGI entry point for gunicorn's asgi worker: the intake in the event loop, the rest in threads.

RDESK's POSTs (paths under ``HUB_LEAN_PATHS``, default ``/zdrav/``) are answered in the
event loop (``integrations/sync/intake_asgi.py``), their items inserted on a few pooled
asynchronous connections. Every other request (the admin, the OAuth callback, health
and metrics) is served by the hub's WSGI application (``hub/wsgi.py``, Django as before),
run by a2wsgi in a pool of ``GUNICORN_THREADS`` threads, each keeping its own database
connection: a slow admin page waits in its thread and never holds up the intake.
"""

from a2wsgi import WSGIMiddleware

from hub.wsgi import application as wsgi_application  # sets Django up


def application_build():
    """The hub's ASGI application: intake paths to the intake's door, the rest to Django."""
    from django.conf import settings

    from integrations.sync.intake_asgi import IntakeDoor
    from integrations.sync.intake_batches import inserters_close
    from integrations.sync.intake_nudges import nudges_sent

    django = WSGIMiddleware(wsgi_application, workers=settings.HUB_WEB_THREADS)
    door = IntakeDoor(django)
    prefixes = tuple(settings.HUB_LEAN_PATHS)

    async def application(scope, receive, send):
        if scope["type"] == "http" and prefixes and scope["path"].startswith(prefixes):
            return await door(scope, receive, send)
        if scope["type"] == "lifespan":
            return await _lifespan(receive, send, on_shutdown=(nudges_sent, inserters_close))
        return await django(scope, receive, send)

    return application


async def _lifespan(receive, send, *, on_shutdown) -> None:
    # The intake's connections open with the first request. On the way out the nudges
    # asked for are sent, then the connections closed.
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            for step in on_shutdown:
                await step()
            await send({"type": "lifespan.shutdown.complete"})
            return


application = application_build()
