"""Health for load balancers and compose, metrics for Prometheus.

``/healthz`` says the process answers and touches nothing else; ``/readyz`` runs the
checks of ``health.py``. Both are open to anyone and show no secrets. ``/metrics`` wants
the bearer token ``HUB_METRICS_TOKEN``; without one set, it answers only callers on
loopback or private addresses that reached the hub directly (a request relayed by nginx
carries X-Forwarded-For, and nginx's own address is private).
"""

import hmac
import ipaddress

from django.conf import settings
from django.http import HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from integrations.monitoring.collectors import DatabaseCollector
from integrations.monitoring.health import readiness
from integrations.monitoring.metrics import ProcessCounters

_RELAY_HEADERS = ("HTTP_X_FORWARDED_FOR", "HTTP_X_REAL_IP", "HTTP_FORWARDED")


@never_cache
@require_safe
def healthz(request):
    return JsonResponse({"status": "ok"})


@never_cache
@require_safe
def readyz(request):
    ready = readiness()
    return JsonResponse(ready.as_json(), status=200 if ready.ok else 503)


def _direct_from_private_network(request) -> bool:
    if any(request.META.get(header) for header in _RELAY_HEADERS):
        return False
    try:
        address = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
    except ValueError:
        return False
    return address.is_loopback or address.is_private


def _refusal(request) -> HttpResponse | None:
    token = settings.HUB_METRICS_TOKEN
    if not token:
        if _direct_from_private_network(request):
            return None
        return JsonResponse(
            {"detail": "metrics are served to the internal network only"}, status=403
        )
    given = request.META.get("HTTP_AUTHORIZATION", "")
    if not given:
        response = JsonResponse({"detail": "a bearer token is required"}, status=401)
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    scheme, _, value = given.partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(
        value.strip().encode(), token.encode()
    ):
        return JsonResponse({"detail": "wrong token"}, status=403)
    return None


@never_cache
@require_safe
def metrics(request):
    refusal = _refusal(request)
    if refusal is not None:
        return refusal
    registry = CollectorRegistry()
    registry.register(ProcessCounters())
    registry.register(DatabaseCollector())
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
