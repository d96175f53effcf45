"""Hypothesis strategies for hostile requests: every field of every RPC of the four services.

Values mix the valid (so that calls get past the first check and into the deeper code), the
almost valid (a cursor with one character changed, a page token naming a year-1 time) and the
plainly hostile (NUL and control characters, SQL fragments, megabyte strings, NaN, Structs
nested to protobuf's limit, unknown enum numbers, timestamps at the ends of their range)."""

from __future__ import annotations

import base64
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from google.protobuf import duration_pb2, struct_pb2, timestamp_pb2
from google.protobuf.message import Message
from hypothesis import strategies as st

from webhook_grpc._gen.webhooks.v1 import deliveries_pb2 as dpb
from webhook_grpc._gen.webhooks.v1 import events_pb2 as epb
from webhook_grpc._gen.webhooks.v1 import feed_pb2 as fpb
from webhook_grpc._gen.webhooks.v1 import subscriptions_pb2 as spb
from webhook_grpc.domain.page_tokens import encode_page_token

NASTY_STRINGS = [
    "",
    " ",
    "\x00",
    "a\x00b",
    "\x01\x02\x1b[31m\x7f",
    "\t\r\n",
    "'; DROP TABLE events; --",
    '" OR 1=1 --',
    "' OR ''='",
    "%",
    "_",
    "%_\\",
    "\\",
    "$1",
    "%s%s%n",
    "{{7*7}}",
    "${jndi:ldap://127.0.0.1/x}",
    "../../etc/passwd",
    "\u202eevil",
    "\ufeff",
    "\u0301",
    "😀" * 10,
    "ǅ" * 64,
    "null",
    "NaN",
    "-1",
    "9" * 40,
    "*",
    ".*",
    "product.*",
    "product.created",
    "PRODUCT.CREATED",
    "product.created\n",
    "a" * 65 + ".b",
    "acme",
    "sub_" + "0" * 26,
    "evt_" + "Z" * 26,
    "dlv_" + "0" * 26,
    "A" * 44,
    "_" * 44,
    "-" * 44,
    "whsec_",
    "whsec_" + "A" * 44,
]

_HUGE_SIZES = (129, 257, 1025, 2049, 70_000, 1_000_000)


def control_texts() -> st.SearchStrategy[str]:
    """Short text dense in control characters (C0, DEL and C1), one in five with a NUL: often
    enough to reach every place NUL can hide, rarely enough that most requests holding several
    such texts still get stored."""
    text = st.text(
        st.one_of(
            st.characters(categories=["Cc"], exclude_characters="\x00"), st.sampled_from("a é☃")
        ),
        max_size=6,
    )
    spliced = st.builds(lambda a, b: f"{a}\x00{b}", text, text)
    return st.integers(0, 4).flatmap(lambda roll: spliced if roll == 0 else text)


def texts(sizes: Sequence[int] = _HUGE_SIZES) -> st.SearchStrategy[str]:
    """Any text: arbitrary unicode, hostile samples, control characters, NUL-splices and long
    repeats (of `sizes` characters: up to a megabyte for a field, less inside Structs, where one
    value may be copied thousands of times)."""
    return st.one_of(
        st.text(max_size=30),
        st.sampled_from(NASTY_STRINGS),
        control_texts(),
        st.builds(lambda a, b: f"{a}\x00{b}", st.text(max_size=5), st.text(max_size=5)),
        st.builds(
            lambda unit, size: (unit * size)[:size],
            st.text(min_size=1, max_size=3),
            st.sampled_from(sizes),
        ),
    )


def mostly(
    valid: st.SearchStrategy[Any], hostile: st.SearchStrategy[Any]
) -> st.SearchStrategy[Any]:
    """Five times in six a valid value, so that a request with several fields still gets past
    the first check often enough to reach the deeper code; otherwise a hostile one."""
    # Not one_of(valid, valid, ..., hostile): one_of merges its branches, and draws a merged
    # sampled_from/text branch much less often than its share.
    return st.integers(0, 5).flatmap(lambda roll: hostile if roll == 5 else valid)


def texts_or(*valid: str) -> st.SearchStrategy[str]:
    """Mostly one of `valid`, otherwise any text."""
    if not valid:
        return texts()
    return mostly(st.sampled_from(valid), texts())


INT32 = st.one_of(
    st.sampled_from([0, 1, -1, 50, 100, 101, 1000, 1001, 2**31 - 1, -(2**31)]),
    st.integers(-(2**31), 2**31 - 1),
)
PAGE_SIZES = mostly(st.sampled_from([0, 1, 2, 50]), INT32)
ENUM = st.one_of(st.integers(-3, 6), st.sampled_from([2**31 - 1, -(2**31)]))


def enums(*valid: int) -> st.SearchStrategy[int]:
    return mostly(st.sampled_from([0, *valid]), ENUM)


INT64_EDGES = [
    0,
    -1,
    -62_135_596_800,  # 0001-01-01T00:00:00Z, the smallest valid Timestamp
    -62_135_596_801,
    253_402_300_799,  # 9999-12-31T23:59:59Z, the largest
    253_402_300_800,
    315_576_000_000,  # the largest valid Duration
    315_576_000_001,
    2**62,
    -(2**63),
    2**63 - 1,
]
NANOS = st.sampled_from([0, 1, -1, 999_999_999, 1_000_000_000, 2**31 - 1, -(2**31)])


def timestamps() -> st.SearchStrategy[timestamp_pb2.Timestamp]:
    return mostly(
        st.builds(
            lambda seconds: timestamp_pb2.Timestamp(seconds=seconds),
            st.integers(1_700_000_000, 1_900_000_000),
        ),
        st.builds(
            lambda seconds, nanos: timestamp_pb2.Timestamp(seconds=seconds, nanos=nanos),
            st.one_of(st.sampled_from(INT64_EDGES), st.integers(-(2**63), 2**63 - 1)),
            NANOS,
        ),
    )


def durations() -> st.SearchStrategy[duration_pb2.Duration]:
    return mostly(
        st.builds(lambda seconds: duration_pb2.Duration(seconds=seconds), st.integers(0, 86_400)),
        st.builds(
            lambda seconds, nanos: duration_pb2.Duration(seconds=seconds, nanos=nanos),
            st.one_of(
                st.sampled_from([*INT64_EDGES, 86_400 * 30, 86_400 * 30 + 1]),
                st.integers(-(2**63), 2**63 - 1),
            ),
            NANOS,
        ),
    )


_STRUCT_TEXT_SIZES = (129, 1025, 2049)


def _json_leaves() -> st.SearchStrategy[Any]:
    return st.one_of(
        st.none(),
        st.booleans(),
        st.floats(allow_nan=True, allow_infinity=True),
        st.sampled_from([0, -0.0, 1e308, -1e308, 5e-324, 2**53 + 1]),
        texts(_STRUCT_TEXT_SIZES),
    )


def _nested(depth: int, leaf: Any) -> dict[str, Any]:
    value: Any = leaf
    for level in range(depth):
        value = {"id": "x", "n": value} if level % 2 else [value]
    return {"id": "deep", "n": value}


# A type whose nested fields are declared, so that what the fuzz puts there reaches storage
# (the fuzzing test registers it); its fields, as json_objects() fills them.
NESTED_TYPE = "fuzznested.created"
NESTED_FIELDS = ("id", "name", "attrs.name", "attrs.tags", "attrs.rows.name")


def _declared_controls() -> st.SearchStrategy[dict[str, Any]]:
    # Control characters (NUL too) at every place a Struct holds text: values at each declared
    # path, in a nested Struct, in a list, in a Struct in a list, and in keys at each level.
    text = control_texts()
    keyed = st.dictionaries(text, text, max_size=2)
    attrs = st.fixed_dictionaries(
        {},
        optional={
            "name": text,
            "tags": st.lists(text, max_size=3),
            "rows": st.lists(st.fixed_dictionaries({"name": text}), max_size=2),
            "keys": keyed,
        },
    )
    return st.builds(
        lambda base, attrs, extra: {**extra, **base, "attrs": {**attrs, **extra}},
        st.fixed_dictionaries({"id": text, "name": text}),
        attrs,
        keyed,
    )


def json_objects() -> st.SearchStrategy[dict[str, Any]]:
    """Struct contents: ordinary, laced with control characters, odd-keyed, deep (up to what
    protobuf can still decode: deeper ones are in test_request_decoding.py) and wide."""
    values = st.recursive(
        _json_leaves(),
        lambda children: st.one_of(
            st.lists(children, max_size=4),
            st.dictionaries(texts(_STRUCT_TEXT_SIZES), children, max_size=4),
        ),
        max_leaves=12,
    )
    ordinary = st.fixed_dictionaries(
        {"id": st.sampled_from(["prod_1", "cust_1"])},
        optional={"name": st.text(max_size=10), "selling_price": st.sampled_from(["1.00", 2])},
    )
    return mostly(
        st.one_of(ordinary, _declared_controls()),
        st.one_of(
            st.dictionaries(
                st.one_of(
                    st.sampled_from(["id", "name", "sku", "a.b", "", "password"]),
                    texts(_STRUCT_TEXT_SIZES),
                ),
                values,
                max_size=6,
            ),
            st.builds(_nested, st.integers(1, 30), _json_leaves()),
            # Wide: many keys (each with its own copy of a small leaf), a long list, one value
            # over max_payload_bytes.
            st.builds(
                lambda size, leaf: {f"k{i}": leaf for i in range(size)},
                st.sampled_from([1_000, 20_000]),
                st.one_of(st.none(), st.booleans(), st.floats(), st.text(max_size=8)),
            ),
            st.builds(lambda size: {"list": list(range(size))}, st.sampled_from([10_000, 60_000])),
            st.builds(lambda size: {"id": "big", "name": "n" * size}, st.just(300_000)),
        ),
    )


def _struct_into(target: struct_pb2.Struct, value: dict[str, Any]) -> None:
    # update() builds the nested messages in place; the Struct(...) constructor would round-trip
    # through the wire format, whose depth limit a client-side copy already trips over.
    target.update(value)


@dataclass(frozen=True)
class Known:
    """Real ids and cursors, so that fuzzed calls also reach rows that exist. `foreign` ones
    belong to a tenant whose rows the fuzz must never change."""

    subscription_ids: Sequence[str]
    delivery_ids: Sequence[str]
    event_ids: Sequence[str]
    cursors: Sequence[str]
    foreign: Sequence[str] = field(default_factory=tuple)


def _mutations(value: str) -> list[str]:
    if not value:
        return []
    flipped = value[:-1] + ("B" if value[-1] != "B" else "C")
    return [value[:-1], value + "A", flipped, value.upper(), value[::-1], value + "\x00"]


def ids(known: Sequence[str]) -> st.SearchStrategy[str]:
    mutated = [m for value in known for m in _mutations(value)]
    return mostly(
        st.sampled_from(known or [""]), st.one_of(st.sampled_from(mutated or [""]), texts())
    )


def page_tokens() -> st.SearchStrategy[str]:
    zones = st.sampled_from([UTC, timezone(timedelta(hours=14)), timezone(timedelta(hours=-12))])
    return mostly(
        st.just(""),
        st.one_of(
            st.builds(
                encode_page_token,
                st.datetimes(
                    min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31), timezones=zones
                ),
                texts(),
            ),
            st.binary(max_size=60).map(lambda raw: base64.urlsafe_b64encode(raw).decode()),
            st.builds(
                lambda text: base64.urlsafe_b64encode(text.encode()).decode(),
                st.sampled_from(
                    ["no-separator", "2020-01-01|x", "2020-01-01T00:00:00|x", "|", "x|y"]
                ),
            ),
            texts(),
        ),
    )


def lists_of(valid: list[str], item: st.SearchStrategy[str]) -> st.SearchStrategy[list[str]]:
    return mostly(st.just(valid), st.lists(item, max_size=3))


PATTERNS = ["*", "product.*", "customer.*", "product.created", "nothing.*", "Product.*", "a.b"]
MASK_PATHS = [
    "url",
    "event_patterns",
    "description",
    "payload_mode",
    "metadata",
    "",
    "*",
    "id",
    "tenant_id",
    "status",
    "secret",
    "subscription.url",
    "metadata.key",
    "URL",
    "url,description",
]
VALID_URLS = ["http://127.0.0.1:9/hook", "https://127.0.0.1:9/h?q='--%00&x=%27"]
URLS = [
    "http://127.0.0.1:9/" + "a" * 2040,
    "ftp://127.0.0.1/",
    "javascript:alert(1)",
    "file:///etc/passwd",
    "http://user:pw@127.0.0.1:9/",
    "http://127.0.0.1:0/",
    "http://127.0.0.1:99999/",
    "http://[::1/",
    "http://127.0.0.1:9/#frag",
    "http://127.0.0.1:9/\x00",
    "http:///nohost",
    "//127.0.0.1/",
    "http://xn--/",
]
VALID_SECRETS = ["", "whsec_" + base64.b64encode(b"k" * 32).decode()]
SECRETS = [
    "whsec_" + base64.b64encode(b"k" * 23).decode(),
    "whsec_" + base64.b64encode(b"k" * 65).decode(),
    "whsec_!!!",
    "sk_live_x",
]
TYPES = ["product.created", "customer.created", "webhook.test", "fuzz.thing", "fuzz.other"]


def _optional(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(st.none(), strategy)


@st.composite
def publish_requests(draw: st.DrawFn, tenants: st.SearchStrategy[str]) -> epb.PublishEventRequest:
    request = epb.PublishEventRequest(
        tenant_id=draw(tenants),
        type=draw(mostly(st.sampled_from([*TYPES[:2], NESTED_TYPE]), texts_or(*TYPES))),
        entity_id=draw(texts_or("prod_1", "cust_1")),
        idempotency_key=draw(texts_or("", "key-1")),
    )
    _struct_into(request.data, draw(json_objects()))
    previous = draw(_optional(json_objects()))
    if previous is not None:
        _struct_into(request.previous, previous)
    occurred = draw(_optional(timestamps()))
    if occurred is not None:
        request.occurred_at.CopyFrom(occurred)
    return request


Builder = Callable[[st.DrawFn, "Context"], Message]


@dataclass(frozen=True)
class Context:
    """What requests are drawn from: tenant names, and the known ids, the foreign ones only
    for callers that must not be able to touch them."""

    tenants: st.SearchStrategy[str]
    known: Known
    with_foreign: bool

    def ids(self, kind: str) -> st.SearchStrategy[str]:
        chosen: Sequence[str] = getattr(self.known, kind)
        return ids([*chosen, *(self.known.foreign if self.with_foreign else ())])


def _publish_events(draw: st.DrawFn, c: Context) -> Message:
    size = draw(st.sampled_from([0, 1, 3, 501]))
    if size == 501:
        small = epb.PublishEventRequest(tenant_id="acme", type="product.created", entity_id="p")
        return epb.PublishEventsRequest(events=[small] * size)
    return epb.PublishEventsRequest(events=[draw(publish_requests(c.tenants)) for _ in range(size)])


def _register(draw: st.DrawFn, c: Context) -> Message:
    rules = draw(
        st.lists(
            st.builds(
                lambda path, classification: epb.FieldRule(
                    path=path, classification=classification
                ),
                texts_or("id", "name", "a.b", "a..b", " a", "x" * 257),
                enums(1, 2, 3, 4),
            ),
            max_size=4,
        )
    )
    return epb.RegisterEventTypeRequest(
        type=draw(st.one_of(st.from_regex(r"\Afuzz\.[a-z][a-z0-9_]{0,8}\Z"), texts_or(*TYPES))),
        description=draw(texts_or("")),
        fields=rules,
    )


def _create(draw: st.DrawFn, c: Context) -> Message:
    return spb.CreateSubscriptionRequest(
        tenant_id=draw(c.tenants),
        url=draw(mostly(st.sampled_from(VALID_URLS), texts_or(*URLS))),
        event_patterns=draw(lists_of(["*"], texts_or(*PATTERNS))),
        description=draw(texts_or("")),
        payload_mode=draw(enums(1, 2)),
        metadata=draw(mostly(st.just({}), st.dictionaries(texts(), texts(), max_size=3))),
        secret=draw(mostly(st.sampled_from(VALID_SECRETS), texts_or(*SECRETS))),
    )


def _by_id(message: type[Message], kind: str = "subscription_ids") -> Builder:
    def build(draw: st.DrawFn, c: Context) -> Message:
        return message(tenant_id=draw(c.tenants), id=draw(c.ids(kind)))

    return build


def _list_subscriptions(draw: st.DrawFn, c: Context) -> Message:
    return spb.ListSubscriptionsRequest(
        tenant_id=draw(c.tenants),
        page_size=draw(PAGE_SIZES),
        page_token=draw(page_tokens()),
        status=draw(enums(1, 2)),
    )


def _update(draw: st.DrawFn, c: Context) -> Message:
    subscription = spb.Subscription(
        id=draw(c.ids("subscription_ids")),
        tenant_id=draw(c.tenants),
        url=draw(mostly(st.sampled_from(VALID_URLS), texts_or(*URLS))),
        event_patterns=draw(lists_of(["*"], texts_or(*PATTERNS))),
        description=draw(texts_or("")),
        status=draw(enums(1, 2)),
        disabled_reason=draw(enums(1, 2, 3)),
        payload_mode=draw(enums(1, 2)),
        metadata=draw(mostly(st.just({}), st.dictionaries(texts(), texts(), max_size=3))),
    )
    created = draw(_optional(timestamps()))
    if created is not None:
        subscription.created_at.CopyFrom(created)
    request = spb.UpdateSubscriptionRequest(subscription=subscription)
    request.update_mask.paths.extend(draw(lists_of(["description"], texts_or(*MASK_PATHS))))
    return request


def _rotate(draw: st.DrawFn, c: Context) -> Message:
    request = spb.RotateSubscriptionSecretRequest(
        tenant_id=draw(c.tenants),
        id=draw(c.ids("subscription_ids")),
        secret=draw(mostly(st.sampled_from(VALID_SECRETS), texts_or(*SECRETS))),
    )
    grace = draw(_optional(durations()))
    if grace is not None:
        request.grace_period.CopyFrom(grace)
    return request


def _feed(message: type[Message], streaming: bool) -> Builder:
    def build(draw: st.DrawFn, c: Context) -> Message:
        fields: dict[str, Any] = {
            "tenant_id": draw(c.tenants),
            "after_cursor": draw(c.ids("cursors")),
            "event_patterns": draw(lists_of([], texts_or(*PATTERNS))),
            "entity_id": draw(texts_or("", "prod_1")),
        }
        if streaming:
            fields["from_latest"] = draw(st.booleans())
        else:
            fields["page_size"] = draw(PAGE_SIZES)
        return message(**fields)

    return build


def _list_deliveries(draw: st.DrawFn, c: Context) -> Message:
    return dpb.ListDeliveriesRequest(
        tenant_id=draw(c.tenants),
        subscription_id=draw(mostly(st.just(""), c.ids("subscription_ids"))),
        status=draw(enums(1, 2, 3, 4)),
        event_id=draw(mostly(st.just(""), c.ids("event_ids"))),
        page_size=draw(PAGE_SIZES),
        page_token=draw(page_tokens()),
    )


def _recover(draw: st.DrawFn, c: Context) -> Message:
    request = dpb.RecoverFailedDeliveriesRequest(
        tenant_id=draw(c.tenants), subscription_id=draw(c.ids("subscription_ids"))
    )
    since = draw(_optional(timestamps()))
    if since is not None:
        request.since.CopyFrom(since)
    return request


# (service, method) -> how to build its request; StreamEvents is the one streaming RPC.
REQUESTS: dict[tuple[str, str], Builder] = {
    ("EventService", "PublishEvent"): lambda draw, c: draw(publish_requests(c.tenants)),
    ("EventService", "PublishEvents"): _publish_events,
    ("EventService", "RegisterEventType"): _register,
    ("EventService", "ListEventTypes"): lambda draw, c: epb.ListEventTypesRequest(
        entity=draw(texts_or("product", "fuzz"))
    ),
    ("SubscriptionService", "CreateSubscription"): _create,
    ("SubscriptionService", "GetSubscription"): _by_id(spb.GetSubscriptionRequest),
    ("SubscriptionService", "ListSubscriptions"): _list_subscriptions,
    ("SubscriptionService", "UpdateSubscription"): _update,
    ("SubscriptionService", "DeleteSubscription"): _by_id(spb.DeleteSubscriptionRequest),
    ("SubscriptionService", "ActivateSubscription"): _by_id(spb.ActivateSubscriptionRequest),
    ("SubscriptionService", "DisableSubscription"): _by_id(spb.DisableSubscriptionRequest),
    ("SubscriptionService", "RotateSubscriptionSecret"): _rotate,
    ("SubscriptionService", "SendTestEvent"): _by_id(spb.SendTestEventRequest),
    ("FeedService", "ListEvents"): _feed(fpb.ListEventsRequest, streaming=False),
    ("FeedService", "StreamEvents"): _feed(fpb.StreamEventsRequest, streaming=True),
    ("DeliveryService", "ListDeliveries"): _list_deliveries,
    ("DeliveryService", "GetDelivery"): _by_id(dpb.GetDeliveryRequest, "delivery_ids"),
    ("DeliveryService", "RetryDelivery"): _by_id(dpb.RetryDeliveryRequest, "delivery_ids"),
    ("DeliveryService", "RecoverFailedDeliveries"): _recover,
}


@st.composite
def calls(draw: st.DrawFn, context: Context) -> tuple[str, str, Message]:
    """One RPC of the four services with a hostile request: (service, method, request)."""
    service, method = draw(st.sampled_from(sorted(REQUESTS)))
    return service, method, REQUESTS[service, method](draw, context)
