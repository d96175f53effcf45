"""The form of a tenant id (README, Access), the same wherever a tenant id enters."""

from __future__ import annotations

import pytest

from webhook_grpc.domain.access import MAX_TENANT_ID, check_tenant_id, is_tenant_id
from webhook_grpc.domain.errors import InvalidArgument


@pytest.mark.parametrize(
    "tenant", ["a", "7", "acme", "Acme-Corp_2.eu", "a.", "a-", "a_", "x" * MAX_TENANT_ID]
)
def test_edge_forms_are_tenant_ids(tenant: str) -> None:
    assert is_tenant_id(tenant)
    assert check_tenant_id(tenant) == tenant


@pytest.mark.parametrize(
    "tenant",
    [
        "",
        "ac me!",
        " acme",
        "acme\n",
        "-acme",
        ".acme",
        "_acme",
        "acme/eu",
        "acmé",
        "\u0430cme",  # a Cyrillic a
        "a\x00",
        "x" * (MAX_TENANT_ID + 1),
    ],
)
def test_other_forms_are_refused_naming_the_field(tenant: str) -> None:
    assert not is_tenant_id(tenant)
    with pytest.raises(InvalidArgument) as refused:
        check_tenant_id(tenant, "events[2].tenant_id")
    assert refused.value.field == "events[2].tenant_id"
