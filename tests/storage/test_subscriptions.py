"""Subscriptions in and out as domain records: create, read, page, change, disable and
activate, rotate signing keys, delete."""

from __future__ import annotations

from datetime import timedelta

from webhook_grpc.domain.models import (
    DisabledReason,
    PayloadMode,
    SubscriptionChanges,
    SubscriptionStatus,
)
from webhook_grpc.domain.signing import SigningKeys
from webhook_grpc.storage.ports import Storage

from .conftest import NOW, later, new_subscription


async def test_create_read_and_page(storage: Storage) -> None:
    made = [new_subscription(created_at=later(i)) for i in range(3)]
    async with storage.transaction() as unit:
        await unit.subscriptions.lock_tenant("acme")
        for subscription in made:
            await unit.subscriptions.insert(subscription)
        await unit.subscriptions.insert(new_subscription("globex"))
    async with storage.read() as unit:
        found = await unit.subscriptions.get(made[0].id, "acme")
        assert await unit.subscriptions.get(made[0].id, "globex") is None
        assert await unit.subscriptions.count_for_tenant("acme") == 3
        first = await unit.subscriptions.list_page("acme", None, None, 2)
        rest = await unit.subscriptions.list_page(
            "acme", None, (first[-1].created_at, first[-1].id), 2
        )
        window = await unit.subscriptions.failure_window_start(made[0].id)
    assert found is not None
    assert (found.url, found.event_patterns, found.metadata, found.status) == (
        made[0].url,
        ("product.*",),
        {"team": "a"},
        SubscriptionStatus.ACTIVE,
    )
    assert (found.created_at, found.disabled_reason, found.previous_secret_expires_at) == (
        NOW,
        None,
        None,
    )
    assert [s.id for s in first + rest] == [s.id for s in made]
    assert window == NOW


async def test_change_disable_activate_and_delete(storage: Storage) -> None:
    subscription = new_subscription()
    async with storage.transaction() as unit:
        await unit.subscriptions.insert(subscription)
        await unit.subscriptions.change(
            subscription.id,
            SubscriptionChanges(
                url="https://example.test/other",
                event_patterns=("order.*",),
                payload_mode=PayloadMode.THIN,
            ),
            later(1),
        )
        assert await unit.subscriptions.disable_if_active(
            subscription.id, DisabledReason.ENDPOINT_GONE, later(2)
        )
        assert not await unit.subscriptions.disable_if_active(
            subscription.id, DisabledReason.MANUAL, later(3)
        )
        disabled = await unit.subscriptions.get(subscription.id, None)
        paged = await unit.subscriptions.list_page("acme", SubscriptionStatus.ACTIVE, None, 5)
        await unit.subscriptions.activate(subscription.id, later(4))
        active = await unit.subscriptions.get(subscription.id, None)
        window = await unit.subscriptions.failure_window_start(subscription.id)
        await unit.subscriptions.delete(subscription.id)
        assert await unit.subscriptions.get(subscription.id, None) is None
    assert disabled is not None and active is not None
    assert (disabled.url, disabled.event_patterns, disabled.payload_mode) == (
        "https://example.test/other",
        ("order.*",),
        PayloadMode.THIN,
    )
    assert disabled.metadata == {"team": "a"}  # unchanged: not in the changes
    assert (disabled.status, disabled.disabled_reason, disabled.disabled_at) == (
        SubscriptionStatus.DISABLED,
        DisabledReason.ENDPOINT_GONE,
        later(2),
    )
    assert paged == []
    assert (active.status, active.disabled_reason, active.disabled_at) == (
        SubscriptionStatus.ACTIVE,
        None,
        None,
    )
    assert window == later(4)


async def test_rotated_keys_sign_with_both_secrets_until_the_grace_ends(
    storage: Storage,
) -> None:
    subscription = new_subscription()
    async with storage.transaction() as unit:
        await unit.subscriptions.insert(subscription)
        keys = await unit.subscriptions.signing_keys(subscription.id)
        assert keys == SigningKeys(subscription.secret, None, None)
        rotated = keys.rotated("whsec_" + "B" * 43, NOW, timedelta(hours=1))
        await unit.subscriptions.rotate_keys(subscription.id, rotated, NOW)
    async with storage.read() as unit:
        stored = await unit.subscriptions.signing_keys(subscription.id)
        shown = await unit.subscriptions.get(subscription.id, None)
        assert await unit.subscriptions.signing_keys("sub_unknown") is None
    assert stored == rotated
    assert stored.active(later(3599)) == ["whsec_" + "B" * 43, subscription.secret]
    assert stored.active(later(3600)) == ["whsec_" + "B" * 43]
    assert shown is not None and shown.previous_secret_expires_at == later(3600)
    without_grace = stored.rotated("whsec_" + "C" * 43, NOW, timedelta(0))
    assert without_grace == SigningKeys("whsec_" + "C" * 43, None, None)
