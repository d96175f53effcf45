from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from webhook_grpc.domain.errors import InvalidArgument
from webhook_grpc.domain.patterns import (
    entity_of,
    matches,
    matches_any,
    validate_event_type,
    validate_patterns,
)

KNOWN = {
    "product.created",
    "product.price_changed",
    "customer.created",
    "webhook.test",
    "webhook.subscription_disabled",
}

type_names = st.from_regex(r"[a-z][a-z0-9_]{0,10}\.[a-z][a-z0-9_]{0,10}", fullmatch=True)


@pytest.mark.parametrize("name", ["product.created", "a.b", "customer_v2.status_changed2"])
def test_valid_event_types(name: str) -> None:
    validate_event_type(name)


@pytest.mark.parametrize(
    "name",
    [
        "",
        "product",
        "product.",
        ".created",
        "Product.created",
        "product.Created",
        "1product.created",
        "product._created",
        "product.created.now",
        "product-x.created",
        "product.created\n",
        "product.*",
        "a." + "b" * 127,
    ],
)
def test_invalid_event_types(name: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        validate_event_type(name, field="event_type.type")
    assert caught.value.field == "event_type.type"


def test_event_type_length_limit() -> None:
    validate_event_type("a." + "b" * 126)


def test_entity_of() -> None:
    assert entity_of("product.price_changed") == "product"
    assert entity_of("webhook.test") == "webhook"


def test_valid_patterns_keep_order_and_drop_duplicates() -> None:
    patterns = ["product.created", "customer.*", "*", "product.created", "*"]
    assert validate_patterns(patterns, KNOWN) == ["product.created", "customer.*", "*"]


def test_entity_wildcard_for_an_entity_without_types_is_accepted() -> None:
    assert validate_patterns(["invoice.*"], KNOWN) == ["invoice.*"]


def test_unregistered_type_is_refused_naming_the_known_types() -> None:
    with pytest.raises(InvalidArgument) as caught:
        validate_patterns(["product.created", "product.deleted"], KNOWN)
    assert caught.value.field == "event_patterns[1]"
    message = caught.value.description
    assert "product.deleted" in message
    assert ", ".join(sorted(KNOWN)) in message


def test_unregistered_type_with_no_known_types() -> None:
    with pytest.raises(InvalidArgument, match="known types: none"):
        validate_patterns(["product.created"], set())


def test_empty_pattern_list_is_refused() -> None:
    with pytest.raises(InvalidArgument) as caught:
        validate_patterns([], KNOWN, field="subscription.event_patterns")
    assert caught.value.field == "subscription.event_patterns"


def test_pattern_count_limit() -> None:
    assert len(validate_patterns(["*"] * 50, KNOWN)) == 1
    with pytest.raises(InvalidArgument) as caught:
        validate_patterns(["*"] * 51, KNOWN)
    assert caught.value.field == "event_patterns"


@pytest.mark.parametrize(
    "pattern",
    [
        "",
        "**",
        "product.**",
        "*.created",
        "product*",
        "Product.*",
        "1x.*",
        ".*",
        "product.cre*",
        "a" * 127 + ".*",
        "product.created ",
    ],
)
def test_malformed_patterns_name_their_index(pattern: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        validate_patterns(["*", pattern], KNOWN)
    assert caught.value.field == "event_patterns[1]"


@pytest.mark.parametrize(
    ("pattern", "event_type", "expected"),
    [
        ("*", "product.created", True),
        ("*", "webhook.test", True),
        ("*", "webhook.subscription_disabled", True),
        ("product.*", "product.created", True),
        ("product.*", "product.price_changed", True),
        ("product.*", "customer.created", False),
        ("product.*", "products.created", False),
        ("prod.*", "product.created", False),
        ("product.created", "product.created", True),
        ("product.created", "product.created_again", False),
        ("product.created", "customer.created", False),
    ],
)
def test_matches(pattern: str, event_type: str, expected: bool) -> None:
    assert matches(pattern, event_type) is expected


def test_matches_any() -> None:
    assert matches_any(["customer.*", "product.created"], "product.created")
    assert not matches_any(["customer.*", "product.created"], "product.activated")
    assert not matches_any([], "product.created")


@given(event_type=type_names)
def test_star_and_own_entity_match_every_type(event_type: str) -> None:
    validate_event_type(event_type)
    assert matches("*", event_type)
    assert matches(entity_of(event_type) + ".*", event_type)
    assert matches(event_type, event_type)


@given(pattern_type=type_names, event_type=type_names)
def test_entity_wildcard_matches_exactly_its_entity(pattern_type: str, event_type: str) -> None:
    pattern = entity_of(pattern_type) + ".*"
    assert matches(pattern, event_type) == (entity_of(pattern_type) == entity_of(event_type))
