"""The intake under random input: never a 5xx, and each POST to a flow leaves one stored group.

A group is what one request stores: one rejected event, or one received event per item.
Each example runs in a savepoint that is rolled back, so examples see an empty table.
"""

import copy
import json

import pytest
from django.db import transaction
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from integrations.sync.models import EventStatus, InboundEvent
from tests.conftest import fixture_bytes, fixture_json

pytestmark = pytest.mark.postgres

FLOW_PATHS = ["/zdrav/booked", "/zdrav/mc"]
SAMPLES = {
    "/zdrav/booked": fixture_json("rdesk/rdesk-booked.json")[0],
    "/zdrav/mc": fixture_json("rdesk/rdesk-mc.json")[0],
}
# Bodies JSON parsers accept but PostgreSQL cannot store, and parsers' own limits.
AWKWARD_BODIES = [
    b'[{"id": NaN}]',
    b"[1e400]",
    b"[" * 5000,
    b'{"name": "\\u0000"}',
    b'{"\\u0000": 1}',
    b'["\\ud800"]',
    b"[" + b"9" * 5000 + b"]",
    fixture_bytes("rdesk/rdesk-booked.json").replace(b'"88888"', b'"\\u0000"'),
]
CONTENT_TYPES = [
    "application/json",
    "application/json; charset=utf-8",
    "application/vnd.rdesk+json",
    "",
    "text/plain",
    "multipart/form-data; boundary=x",
    "application/x-www-form-urlencoded",
]
# The fuzz is a property check, not a benchmark: examples are fast, but the first ones
# pay for the database and the flows' cache.
FUZZ = hypothesis_settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)


@st.composite
def mutated_samples(draw, path: str) -> bytes:
    """The flow's sample item with some fields replaced by random JSON or left out."""
    item = copy.deepcopy(SAMPLES[path])
    for _ in range(draw(st.integers(0, 4))):
        key = draw(st.sampled_from(sorted(item)))
        if draw(st.booleans()):
            item[key] = draw(json_values)
        else:
            del item[key]
        if not item:
            break
    items = [item] * draw(st.integers(1, 3))
    return json.dumps(items if draw(st.booleans()) else item, ensure_ascii=draw(st.booleans()))


def bodies(path: str):
    return st.one_of(
        mutated_samples(path),
        json_values.map(lambda value: json.dumps(value).encode()),
        st.binary(max_size=300),
        st.sampled_from(AWKWARD_BODIES),
    )


headers = st.dictionaries(
    st.from_regex(r"X-[A-Za-z0-9-]{1,12}", fullmatch=True),
    st.text(st.characters(codec="latin-1"), max_size=30),
    max_size=3,
)


# Paths the hub's other routes own (the admin, health, metrics, the schema) are not the
# intake's to answer.
OTHER_ROUTES = {"admin", "amocrm", "i18n", "api", "healthz", "readyz", "metrics", "static"}
unknown_paths = st.from_regex(
    r"/[a-z0-9._-]{1,20}(/[a-z0-9._-]{1,12}){0,2}", fullmatch=True
).filter(lambda path: path.split("/")[1] not in OTHER_ROUTES)


def in_rolled_back_savepoint(run):
    with transaction.atomic():
        result = run()
        transaction.set_rollback(True)
    return result


@FUZZ
@given(data=st.data(), content_type=st.sampled_from(CONTENT_TYPES), extra=headers)
def test_random_posts_never_fail_and_store_exactly_one_group(
    client, db, settings, data, content_type, extra
):
    settings.HUB_TRUST_X_FORWARDED_FOR = True
    path = data.draw(st.sampled_from(FLOW_PATHS))
    body = data.draw(bodies(path))
    if isinstance(body, str):
        body = body.encode()
    forwarded = data.draw(st.sampled_from(["", "203.0.113.9", "not-an-address", "::1, x"]))
    if forwarded:
        extra = {**extra, "X-Forwarded-For": forwarded}

    def run():
        response = client.post(path, body, content_type=content_type, headers=extra)
        stored = list(InboundEvent.objects.values_list("status", "body_hash", "item_index"))
        return response, stored

    response, stored = in_rolled_back_savepoint(run)

    assert response.status_code < 500
    assert response.headers["Content-Type"] == "application/json"
    statuses = {status for status, _, _ in stored}
    assert len({body_hash for _, body_hash, _ in stored}) == 1
    if response.status_code == 200:
        assert statuses == {EventStatus.RECEIVED}
        items = json.loads(body)
        assert len(stored) == (len(items) if isinstance(items, list) else 1)
    else:
        assert 400 <= response.status_code < 500
        assert (statuses, len(stored)) == ({EventStatus.REJECTED}, 1)
        assert response.json()["status"] == "error"


@FUZZ
@given(
    method=st.sampled_from(["GET", "HEAD", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"]),
    path=st.sampled_from(FLOW_PATHS) | unknown_paths,
    body=st.binary(max_size=50),
)
def test_other_methods_and_unknown_paths_never_fail_and_store_nothing(
    client, db, method, path, body
):
    def run():
        response = client.generic(method, path, body, content_type="application/json")
        return response, InboundEvent.objects.count()

    response, stored = in_rolled_back_savepoint(run)

    assert response.status_code < 500
    assert stored == 0
    if path in FLOW_PATHS:
        assert (response.status_code, response.headers["Allow"]) == (405, "POST")
