"""Rules that keep hostile input a client's mistake (issue 8): text storable on both backends,
page tokens, entity names that fit their column, Struct numbers JSON can hold, and status
messages small enough for gRPC trailers."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta, timezone

import grpc
import pytest
from google.protobuf import struct_pb2
from google.protobuf.message import Message
from google.rpc import error_details_pb2, status_pb2

from webhook_grpc._gen.webhooks.v1 import events_pb2 as epb
from webhook_grpc._gen.webhooks.v1 import subscriptions_pb2 as spb
from webhook_grpc.api.convert import dict_to_struct, struct_to_dict
from webhook_grpc.api.errors import MAX_MESSAGE_BYTES, clip, status_for
from webhook_grpc.api.storable_text import require_storable_text
from webhook_grpc.domain.errors import InvalidArgument, NotFound
from webhook_grpc.domain.page_tokens import decode_page_token, encode_page_token
from webhook_grpc.domain.patterns import validate_event_type


def refused_field(message: Message) -> str:
    with pytest.raises(InvalidArgument) as caught:
        require_storable_text(message)
    return caught.value.field


def test_nul_is_refused_naming_the_field_path() -> None:
    assert refused_field(spb.GetSubscriptionRequest(id="sub_\x00")) == "id"
    assert (
        refused_field(
            spb.UpdateSubscriptionRequest(subscription=spb.Subscription(description="a\x00"))
        )
        == "subscription.description"
    )
    batch = epb.PublishEventsRequest(
        events=[epb.PublishEventRequest(), epb.PublishEventRequest(entity_id="\x00")]
    )
    assert refused_field(batch) == "events[1].entity_id"
    assert refused_field(spb.CreateSubscriptionRequest(event_patterns=["*", "\x00"])) == (
        "event_patterns[1]"
    )
    assert refused_field(spb.CreateSubscriptionRequest(metadata={"k": "\x00"})) == "metadata['k']"
    assert refused_field(spb.CreateSubscriptionRequest(metadata={"\x00": "v"})) == (
        "metadata['\\x00']"
    )
    mask = spb.UpdateSubscriptionRequest()
    mask.update_mask.paths.append("url\x00")
    assert refused_field(mask) == "update_mask.paths[0]"


def refused_path(data: dict[str, object], field: str = "events[1].data") -> str:
    with pytest.raises(InvalidArgument) as caught:
        struct_to_dict(dict_to_struct(data), field)
    return caught.value.field


def test_nul_in_struct_values_and_keys_is_refused_naming_the_json_path() -> None:
    assert refused_path({"name": "a\x00"}) == "events[1].data.name"
    assert refused_path({"n": {"m": [1, {"x": "\x00"}]}}) == "events[1].data.n.m[1].x"
    assert refused_path({"\x00key": 1}) == "events[1].data['\\x00key']"
    assert refused_path({"a.b": ["\x00"]}) == "events[1].data['a.b'][0]"
    assert refused_path({"ok": [[{}]], "": {"é": "\x00"}}, "previous") == "previous['']['é']"


def test_other_text_and_control_characters_are_left_alone() -> None:
    controls = "".join(map(chr, range(1, 32))) + "\x7f\x80\x9f\ufffe\U0010ffff"
    request = epb.PublishEventRequest(
        tenant_id="acme ☃ \x01\x7f", entity_id="'; DROP TABLE x; --", idempotency_key="%_\\"
    )
    data = {controls: controls, "nested": [{"x": controls}, None, 1.5, True]}
    request.data.update(data)
    require_storable_text(request)
    assert struct_to_dict(request.data) == data


def test_page_tokens_round_trip() -> None:
    when = datetime(2026, 11, 28, 10, 0, 0, 123456, tzinfo=UTC)
    assert decode_page_token(encode_page_token(when, "sub_01ABC")) == (when, "sub_01ABC")
    assert decode_page_token("") is None


def _token(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode()


@pytest.mark.parametrize(
    "token",
    [
        "not base64!",
        "é",
        _token("no separator"),
        _token("2026-01-01T00:00:00|sub_1"),  # no time zone
        _token("0001-01-01T00:00:00+14:00|sub_1"),  # before year 1 in UTC
        _token("2026-01-01T00:00:00+00:00|"),
        _token("2026-01-01T00:00:00+00:00|sub_\x00"),
        _token("2026-01-01T00:00:00+00:00|" + "x" * 65),
        base64.urlsafe_b64encode(b"\xff\xfe|x").decode(),
    ],
)
def test_page_tokens_not_made_here_are_refused(token: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        decode_page_token(token)
    assert caught.value.field == "page_token"


def test_page_token_times_are_normalised_to_utc() -> None:
    local = datetime(2026, 1, 1, 12, 0, tzinfo=timezone(timedelta(hours=2)))
    decoded = decode_page_token(encode_page_token(local, "sub_1"))
    assert decoded == (datetime(2026, 1, 1, 10, 0, tzinfo=UTC), "sub_1")
    assert decoded[0].tzinfo is UTC


def test_entity_of_an_event_type_fits_its_column() -> None:
    validate_event_type("a" * 64 + ".b")
    with pytest.raises(InvalidArgument, match="entity"):
        validate_event_type("a" * 65 + ".b")


@pytest.mark.parametrize("number", [float("nan"), float("inf"), float("-inf")])
def test_struct_numbers_json_cannot_hold_are_invalid_arguments(number: float) -> None:
    value = struct_pb2.Struct()
    value.update({"ok": 1})
    value.fields["bad"].number_value = number
    with pytest.raises(InvalidArgument) as caught:
        struct_to_dict(value, "events[2].previous")
    assert caught.value.field == "events[2].previous"


def test_clip_keeps_whole_characters() -> None:
    assert clip("short", 10) == "short"
    clipped = clip("☃" * 100, 20)
    assert len(clipped.encode()) <= 20
    assert clipped.endswith("…")
    assert set(clipped[:-1]) == {"☃"}


def test_status_messages_quoting_huge_input_stay_small() -> None:
    huge = "x" * 1_000_000
    for error in (NotFound(f"subscription {huge!r} not found"), InvalidArgument(huge, huge)):
        status = status_for(error)
        assert status.code is (
            grpc.StatusCode.NOT_FOUND
            if isinstance(error, NotFound)
            else grpc.StatusCode.INVALID_ARGUMENT
        )
        size = len(status.details.encode()) + sum(len(v) for _, v in status.trailing_metadata)
        assert size < 4 * MAX_MESSAGE_BYTES
    detail = status_pb2.Status.FromString(
        dict(status_for(InvalidArgument("url", huge)).trailing_metadata)["grpc-status-details-bin"]
    )
    bad = error_details_pb2.BadRequest()
    detail.details[0].Unpack(bad)
    assert bad.field_violations[0].field == "url"
