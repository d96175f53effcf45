from __future__ import annotations

import copy
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from webhook_grpc.domain.cursors import FeedPosition
from webhook_grpc.domain.models import Event, StoredEvent
from webhook_grpc.domain.projection import (
    Classification,
    FieldRules,
    hides_every_change,
    is_credential_name,
    less_private,
    project,
    project_event,
    project_stored,
    rules_version,
)

P, I, C, R = (
    Classification.PUBLIC,
    Classification.INTERNAL,
    Classification.CONFIDENTIAL,
    Classification.RESTRICTED,
)


def test_shareable_classes() -> None:
    assert [c for c in Classification if c.shareable] == [P, I]


def test_customer_example() -> None:
    rules: FieldRules = {
        "id": P,
        "name": P,
        "status": I,
        "email": C,
        "address": R,
        "address.city": P,  # a restricted ancestor wins over a shareable child
        "assigned_rep.name": P,
        "assigned_rep.salary": R,
        "assigned_rep.commission_rate": R,
    }
    data = {
        "id": "cus_1",
        "name": "Acme",
        "status": "active",
        "email": "a@acme.test",
        "address": {"city": "Oslo", "street": "Main 1"},
        "assigned_rep": {"name": "Kim", "salary": 90000, "commission_rate": 0.1, "phone": "1"},
        "lifetime_value": 1000,
        "api_key": "k",
    }
    assert project(data, rules) == {
        "id": "cus_1",
        "name": "Acme",
        "status": "active",
        "assigned_rep": {"name": "Kim"},
    }


def test_undeclared_fields_are_dropped() -> None:
    assert project({"id": 1, "surprise": 2, "nested": {"x": 1}}, {"id": P}) == {"id": 1}


def test_declared_dict_is_kept_even_when_empty() -> None:
    rules: FieldRules = {"meta": P, "other": I}
    assert project({"meta": {"undeclared": 1}, "other": {}}, rules) == {"meta": {}, "other": {}}


def test_undeclared_dict_without_declared_children_is_dropped() -> None:
    assert project({"meta": {"x": 1}, "empty": {}}, {"meta.y": P}) == {}


def test_declared_dict_keeps_only_declared_children() -> None:
    rules: FieldRules = {"rep": P, "rep.name": P, "rep.salary": R}
    assert project({"rep": {"name": "Kim", "salary": 1, "x": 2}}, rules) == {"rep": {"name": "Kim"}}


def test_declared_list_keeps_scalars_and_projects_dicts() -> None:
    rules: FieldRules = {"tags": P, "lines": P, "lines.sku": P, "lines.cost": C}
    data = {
        "tags": ["a", "b", ["c"]],
        "lines": [{"sku": "A", "cost": 1}, {"cost": 2}, "loose"],
    }
    assert project(data, rules) == {
        "tags": ["a", "b", ["c"]],
        "lines": [{"sku": "A"}, {}, "loose"],
    }


def test_undeclared_list_is_dropped_unless_dicts_hold_declared_fields() -> None:
    rules: FieldRules = {"lines.sku": P}
    data = {
        "tags": ["a", "b"],
        "lines": [{"sku": "A", "cost": 1}, {"cost": 2}, "loose"],
        "others": [{"cost": 3}],
    }
    assert project(data, rules) == {"lines": [{"sku": "A"}]}


def test_blocked_list_is_dropped() -> None:
    rules: FieldRules = {"lines": C, "lines.sku": P}
    assert project({"lines": [{"sku": "A"}]}, rules) == {}


def test_tuples_become_lists() -> None:
    assert project({"tags": ("a", "b")}, {"tags": P}) == {"tags": ["a", "b"]}


@pytest.mark.parametrize(
    "key",
    ["password", "PASSWORD", "api_key", "Api_Key", "client_secret", "refresh_TOKEN", "x_token"],
)
def test_credentials_are_dropped_even_when_declared(key: str) -> None:
    assert is_credential_name(key)
    assert project({key: "s", "nested": {key: "s"}}, {key: P, "nested": P, f"nested.{key}": P}) == {
        "nested": {}
    }


@pytest.mark.parametrize("key", ["secret", "token", "tokens", "secretary", "api_keys", "passwords"])
def test_names_that_only_resemble_credentials_follow_the_rules(key: str) -> None:
    assert not is_credential_name(key)
    assert project({key: 1}, {key: P}) == {key: 1}


def test_keys_with_dots_are_dropped() -> None:
    # "a.b" as one key would otherwise be allowed by a rule meant for the nested field a → b.
    rules: FieldRules = {"a": R, "a.b": P}
    assert project({"a.b": 1, "a": {"b": 2}}, rules) == {}


def test_non_string_keys_are_dropped() -> None:
    assert project({1: "x", "id": 1}, {"1": P, "id": P}) == {"id": 1}  # type: ignore[dict-item]


def test_output_is_a_new_object() -> None:
    data = {"meta": {"a": 1}, "list": [{"a": 1}]}
    rules: FieldRules = {"meta": P, "meta.a": P, "list": P, "list.a": P}
    out = project(data, rules)
    assert out == data
    out["meta"]["a"] = 2
    out["list"][0]["a"] = 2
    assert data == {"meta": {"a": 1}, "list": [{"a": 1}]}


# Property tests: keys come from a small alphabet so that random rules hit random data.

KEYS = ["id", "name", "rep", "salary", "x", "lines", "password", "db_token", "API_KEY", "a.b"]
keys = st.sampled_from(KEYS)
scalars = st.none() | st.booleans() | st.integers() | st.text(max_size=5)
values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(keys, children, max_size=4),
    max_leaves=20,
)
documents = st.dictionaries(keys, values, max_size=6)
paths = st.lists(st.sampled_from(KEYS), min_size=1, max_size=3).map(".".join)
rule_sets = st.dictionaries(paths, st.sampled_from(list(Classification)), max_size=12)


def leaf_paths(value: Any, path: str = "") -> Iterator[str]:
    """Dotted paths of kept scalars, and of dicts/lists kept for being declared though empty."""
    if isinstance(value, dict):
        if not value and path:
            yield path
        for key, child in value.items():
            yield from leaf_paths(child, f"{path}.{key}" if path else key)
    elif isinstance(value, list):
        if not value:
            yield path
        for item in value:
            yield from leaf_paths(item, path)
    else:
        yield path


def all_keys(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for key, child in value.items():
            yield key
            yield from all_keys(child)
    elif isinstance(value, list):
        for item in value:
            yield from all_keys(item)


@given(data=documents, rules=rule_sets)
def test_output_holds_only_shareable_paths(data: dict[str, Any], rules: FieldRules) -> None:
    out = project(data, rules)
    for path in leaf_paths(out):
        assert rules.get(path) in (P, I), path
        parts = path.split(".")
        for depth in range(1, len(parts) + 1):
            ancestor = ".".join(parts[:depth])
            assert rules.get(ancestor) not in (C, R), path


@given(data=documents, rules=rule_sets)
def test_output_never_holds_credential_keys(data: dict[str, Any], rules: FieldRules) -> None:
    assert not any(is_credential_name(key) for key in all_keys(project(data, rules)))


@given(data=documents, rules=rule_sets)
def test_input_is_not_modified(data: dict[str, Any], rules: FieldRules) -> None:
    before = copy.deepcopy(data)
    project(data, rules)
    assert data == before


@given(data=documents, rules=rule_sets)
def test_projection_is_idempotent(data: dict[str, Any], rules: FieldRules) -> None:
    once = project(data, rules)
    assert project(once, rules) == once


PLAIN_KEYS = [key for key in KEYS if "." not in key and not is_credential_name(key)]
plain_documents = st.dictionaries(
    st.sampled_from(PLAIN_KEYS),
    st.recursive(
        scalars,
        lambda children: (
            st.lists(children, max_size=3)
            | st.dictionaries(st.sampled_from(PLAIN_KEYS), children, max_size=4)
        ),
        max_leaves=20,
    ),
    max_size=6,
)


@given(data=plain_documents)
def test_fully_declared_data_passes_through_unchanged(data: dict[str, Any]) -> None:
    rules = dict.fromkeys(_all_paths(data), P)
    assert project(data, rules) == data


def _all_paths(value: Any, path: str = "") -> Iterator[str]:
    if isinstance(value, dict):
        for key, child in value.items():
            child_path = f"{path}.{key}" if path else key
            yield child_path
            yield from _all_paths(child, child_path)
    elif isinstance(value, list):
        for item in value:
            yield from _all_paths(item, path)


def test_less_private_names_only_relaxed_known_fields() -> None:
    current = {"cost_price": C, "salary": R, "selling_price": P, "category_id": I}
    requested = {
        "cost_price": P,  # relaxed
        "salary": I,  # relaxed
        "selling_price": C,  # more private: allowed
        "category_id": I,  # unchanged
        "warehouse": P,  # new: allowed
    }
    assert less_private(current, requested) == {"cost_price": C, "salary": R}
    assert less_private(current, {"salary": C}) == {"salary": R}
    assert less_private({}, {"anything": P}) == {}


def test_an_event_hides_every_change_only_when_the_projection_empties_its_previous() -> None:
    assert hides_every_change({"cost_price": "6"}, {})
    assert not hides_every_change({"cost_price": "6", "name": "W"}, {"name": "W"})
    # Nothing was said to have changed: nothing hidden is revealed.
    assert not hides_every_change(None, None)
    assert not hides_every_change({}, {})


def test_a_previous_that_projects_to_nothing_is_dropped_not_sent_empty() -> None:
    # Stored when `amount` was public; it has been made confidential since.
    now = datetime.now(UTC)
    event = Event("evt_1", "acme", "invoice.paid", "inv_1", {"id": "i"}, {"amount": 5}, now, now)
    assert project_event(event, {"id": P, "amount": P}).previous == {"amount": 5}
    assert project_event(event, {"id": P, "amount": C}).previous is None
    assert project_event(replace(event, previous=None), {"id": P}).previous is None


def test_the_rules_version_changes_with_any_rule_and_only_with_the_rules() -> None:
    rules: FieldRules = {"id": P, "amount": P, "customer.email": C}
    version = rules_version(rules)
    assert rules_version(dict(reversed(rules.items()))) == version  # order does not matter
    assert 0 <= version < 2**63  # fits a signed 64-bit column
    changed = [
        {"id": P, "amount": I, "customer.email": C},  # a class
        {"id": P, "amount": P},  # a rule removed
        {"id": P, "amount": P, "customer.email": C, "notes": P},  # a rule added
        {"id": P, "amount": P, "customer.mail": C},  # a path
        {},
    ]
    assert len({version, *(rules_version(other) for other in changed)}) == len(changed) + 1


def test_an_event_stored_under_todays_rules_is_not_projected_again() -> None:
    now = datetime.now(UTC)
    # Holds a field that the rules would drop: only a skipped projection keeps it.
    event = Event("evt_1", "acme", "invoice.paid", "inv_1", {"id": "i", "x": 1}, None, now, now)
    rules: FieldRules = {"id": P}
    current = rules_version(rules)
    skipped = project_stored(StoredEvent(event, FeedPosition(0, 1), current), rules, current, "c")
    assert skipped == replace(event, cursor="c")
    for stored_version in (None, rules_version({"id": P, "x": C})):
        stored = StoredEvent(event, FeedPosition(0, 1), stored_version)
        assert project_stored(stored, rules, current, "c") == project_event(event, rules, "c")
