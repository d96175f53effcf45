from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from webhook_grpc.domain.builtin_types import BUILTIN_SCHEMAS
from webhook_grpc.domain.errors import InvalidArgument
from webhook_grpc.domain.filter_limits import MAX_FILTER_CHARS
from webhook_grpc.domain.filters import FilterInput, check_filter, compile_filter
from webhook_grpc.domain.models import Event
from webhook_grpc.domain.projection import project_event

SPEC_EXAMPLE = 'type == "product.price_changed" && double(data.selling_price) > 100.0'
NOW = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)


def event(
    type_: str = "product.price_changed",
    data: dict[str, Any] | None = None,
    previous: dict[str, Any] | None = None,
) -> Event:
    data = {"id": "prod_1", "sku": "A-1", "selling_price": "119.90"} if data is None else data
    return Event("evt_1", "acme", type_, "prod_1", data, previous, NOW, NOW)


def position(error: pytest.ExceptionInfo[InvalidArgument]) -> tuple[int, int]:
    found = re.match(r"line (\d+), column (\d+): ", error.value.description)
    assert found, error.value.description
    return int(found.group(1)), int(found.group(2))


def test_spec_example_matches_on_price() -> None:
    spec = compile_filter(SPEC_EXAMPLE)
    assert spec.matches(event())
    assert not spec.matches(event(data={"selling_price": "99.00"}))
    assert not spec.matches(event("product.created"))


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ('entity_id == "prod_1"', True),
        ("has(data.sku) && !has(data.cost_price)", True),
        ('data.sku.startsWith("A-") && data.sku.matches("^A-[0-9]+$")', True),
        ('type in ["product.created", "product.price_changed"]', True),
        ("double(previous.selling_price) < double(data.selling_price)", True),
        ('data.tags.exists(t, t == "sale")', True),
        ("data.stock > 5", True),  # numbers from a protobuf Struct are doubles
        ('timestamp(data.updated_at) - timestamp(data.created_at) > duration("1h")', True),
        ('type(data) == map && type.endsWith("_changed")', True),
        ("data.stock > 50", False),
        ('data.tags.all(t, t == "sale")', False),
        ('timestamp(data.updated_at) < timestamp("2026-01-01T00:00:00Z")', False),
    ],
)
def test_cel_language_over_the_event(source: str, expected: bool) -> None:
    data = {
        "sku": "A-1",
        "selling_price": "119.90",
        "stock": 10.0,
        "tags": ["blue", "sale"],
        "created_at": "2026-11-28T08:00:00Z",
        "updated_at": "2026-11-28T10:00:00.123Z",
    }
    matched = compile_filter(source).matches(event(data=data, previous={"selling_price": "99"}))
    assert matched is expected


@pytest.mark.parametrize(
    "source",
    [
        'data.cost_price == "1"',  # missing field
        "double(data.sku) > 1.0",  # bad conversion
        "previous.selling_price != data.selling_price",  # no previous: an empty map
        "data.sku",  # not a bool at run time
        "int(data.selling_price) / 0 == 1",
    ],
)
def test_runtime_error_means_no_match(source: str) -> None:
    assert not compile_filter(source).matches(event())


def test_an_event_cel_cannot_hold_matches_nothing() -> None:
    huge = event(data={"sku": "A-1", "n": 2**70})
    assert not compile_filter("has(data.n)").matches(huge)
    assert not compile_filter('data.sku == "A-1"').matches(huge)


def test_one_input_serves_many_filters() -> None:
    prepared = FilterInput(event())
    assert compile_filter(SPEC_EXAMPLE).matches(prepared)
    assert not compile_filter('type == "product.created"').matches(prepared)


def test_a_confidential_field_is_never_there() -> None:
    raw = event(data={"id": "prod_1", "selling_price": "10.00", "cost_price": "500.00"})
    projected = project_event(raw, BUILTIN_SCHEMAS["product"])
    by_cost = compile_filter("double(data.cost_price) > 100.0")
    assert by_cost.matches(raw)  # the filter itself would match, were the field there
    assert not by_cost.matches(projected)
    assert not compile_filter("has(data.cost_price)").matches(projected)
    assert compile_filter("!has(data.cost_price)").matches(projected)


@pytest.mark.parametrize(
    ("source", "line", "column", "why"),
    [
        ('type == "product.created" &&\n  data.selling_price >', 2, 23, "Syntax error"),
        ("type == 1", 1, 6, "no matching overload"),
        ("shout(data.sku)", 1, 6, "undeclared reference to 'shout'"),
        ("cost_price > 1", 1, 1, "undeclared reference to 'cost_price'"),
        ('entity_id + "x"', 1, 1, "must yield a bool"),
    ],
)
def test_invalid_filter_names_its_position(source: str, line: int, column: int, why: str) -> None:
    with pytest.raises(InvalidArgument) as error:
        compile_filter(source)
    assert error.value.field == "filter"
    assert position(error) == (line, column)
    assert why in error.value.description
    assert "container" not in error.value.description  # how `type` is declared stays inside


@pytest.mark.parametrize(
    ("source", "line", "column", "why"),
    [
        ("true || " * 300 + "true", 1, MAX_FILTER_CHARS + 1, "at most"),
        ("data.a.all(x, data.b.exists(y, x == y))", 1, 8, "may not contain another"),
        ("data.a.all(x, x in data.b)", 1, 20, "may not read `data`"),
        ("data.a.all(x, x.b.exists(y, y == 1))", 1, 8, "may not contain another"),
        ("data.a.map(x,\n previous)== []", 2, 2, "may not read `previous`"),
        ("data.a.all(x, x in event.data.b)", 1, 20, "may not read `event`"),
        ("data.a.all(x, x in .data.b)", 1, 21, "may not read `data`"),
        ("data.a.all(x, x in .event.previous.b)", 1, 21, "may not read `event`"),
        ("data.a.all(x, {data: 1}[x] == 1)", 1, 16, "may not read `data`"),
        (
            'data.sku == "a" // """\n|| data.a.all(x, x in data.b) || data.sku == """ """',
            2,
            23,
            "may not read `data`",
        ),
        ("data.sku == 'a' // it's\n|| data.a.all(x, x in data.b)", 2, 23, "may not read `data`"),
        (" || ".join(["data.a.exists(x, x == 1)"] * 5), 1, 4 * 28 + 8, "at most 4"),
    ],
)
def test_costly_filters_are_refused(source: str, line: int, column: int, why: str) -> None:
    with pytest.raises(InvalidArgument) as error:
        compile_filter(source)
    assert position(error) == (line, column)
    assert why in error.value.description


def test_comprehension_words_inside_strings_are_not_counted() -> None:
    words = 'data.sku == ".all(x, data)" || data.sku == r"\\d" || data.sku == """.map(data"""'
    assert not compile_filter(words).matches(event())
    assert compile_filter('data.tags.all(t, t != "data")').matches(event(data={"tags": ["a"]}))
    # a field called data, under the comprehension's own variable, is its own element
    assert compile_filter("data.lines.all(l, l.data > 1.0)").matches(
        event(data={"lines": [{"data": 2.0}]})
    )
    assert compile_filter("// data.a.all(x, data)\ntrue").matches(event())


@pytest.mark.parametrize(
    "source", ["(" * 1000 + "true" + ")" * 1000, "data" + ".a" * 1000, "1 + " * 500 + "1 == 2"]
)
def test_deep_nesting_is_refused_not_a_crash(source: str) -> None:
    with pytest.raises(InvalidArgument, match=r"^filter: (Expression r|Exceeded max r)ecursion"):
        compile_filter(source)


def test_blank_filter_is_refused() -> None:
    with pytest.raises(InvalidArgument, match="blank"):
        compile_filter("  ")


def test_compiled_filters_are_shared_by_source() -> None:
    assert compile_filter(SPEC_EXAMPLE) is compile_filter(SPEC_EXAMPLE)


def test_check_filter_names_the_field_it_is_given() -> None:
    assert check_filter(SPEC_EXAMPLE, "subscription.filter") is compile_filter(SPEC_EXAMPLE)
    with pytest.raises(InvalidArgument) as error:
        check_filter("type ==", "subscription.filter")
    assert error.value.field == "subscription.filter"
    assert position(error) == (1, 8)


CEL_PIECES = st.sampled_from(
    [
        "data",
        "previous",
        "type",
        "entity_id",
        ".",
        "(",
        ")",
        "[",
        "]",
        "{",
        "}",
        ",",
        ":",
        " ",
        "\n",
        '"',
        "'",
        "r",
        "b",
        "\\",
        "//",
        "==",
        "&&",
        "||",
        "!",
        "?",
        "1",
        "1.5",
        "0x1",
        "all",
        "exists",
        "map",
        "filter",
        "has",
        "size",
        "in",
        "x",
        "+",
        "-",
        "*",
        "/",
        "%",
        "\x00",
    ]
)


@settings(max_examples=300, deadline=None)
@given(st.lists(CEL_PIECES, max_size=40).map("".join))
def test_any_text_is_compiled_or_refused_never_a_crash(source: str) -> None:
    try:
        compiled = compile_filter(source)
    except InvalidArgument as error:
        assert error.field == "filter"
    else:
        assert compiled.matches(event()) in (True, False)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner),
    max_leaves=10,
)


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(st.sampled_from(["a", "b", "sku"]), JSON),
    st.none() | st.dictionaries(st.just("a"), JSON),
)
def test_any_event_data_evaluates_without_raising(
    data: dict[str, Any], previous: dict[str, Any] | None
) -> None:
    for source in [
        "data.a == 1",
        "has(data.b) && size(data.b) > 0",
        'data.sku.startsWith("A")',
        "data.a == previous.a",
        "data.b.exists(x, x == null)",
    ]:
        assert compile_filter(source).matches(event(data=data, previous=previous)) in (True, False)
