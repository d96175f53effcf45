"""Subscriptions in and out as domain records: create, read, page, change, disable and
activate, rotate signing keys, delete."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from webhook_grpc.domain.models import (
    DisabledReason,
    Ordering,
    PayloadMode,
    SigningAlgorithm,
    SubscriptionChanges,
    SubscriptionStatus,
)
from webhook_grpc.domain.signing import SigningKeys
from webhook_grpc.storage.ports import SealedSecrets, Storage

from .conftest import NOW, SECRET, later, new_subscription


async def test_a_subscription_reads_back_as_inserted(storage: Storage) -> None:
    # The domain Subscription is what goes in (with its sealed secret) and what comes out.
    inserted = replace(
        new_subscription(),
        status=SubscriptionStatus.DISABLED,
        disabled_reason=DisabledReason.ENDPOINT_GONE,
        disabled_at=later(2),
        updated_at=later(2),
        previous_secret_expires_at=later(3),
        filter="event.type != ''",
        headers={"X-Tenant": "a"},
        ordering=Ordering.FIFO,
        rate_limit_per_second=7,
    )
    async with storage.transaction() as unit:
        await unit.subscriptions.insert(inserted, SECRET)
    async with storage.read() as unit:
        assert await unit.subscriptions.get(inserted.id, None) == inserted


async def test_create_read_and_page(storage: Storage) -> None:
    made = [new_subscription(created_at=later(i)) for i in range(3)]
    async with storage.transaction() as unit:
        await unit.subscriptions.lock_tenant("acme")
        for subscription in made:
            await unit.subscriptions.insert(subscription, SECRET)
        await unit.subscriptions.insert(new_subscription("globex"), SECRET)
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
        await unit.subscriptions.insert(subscription, SECRET)
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
    hmac = new_subscription()
    async with storage.transaction() as unit:
        await unit.subscriptions.insert(subscription, SECRET)
        await unit.subscriptions.insert(hmac, SECRET)
        keys = await unit.subscriptions.signing_keys(subscription.id)
        assert keys == SigningKeys(SECRET, None, None)
        rotated = keys.rotated("whsec_" + "B" * 43, NOW, timedelta(hours=1))
        await unit.subscriptions.rotate_keys(subscription.id, rotated, NOW)
    async with storage.read() as unit:
        stored = await unit.subscriptions.signing_keys(subscription.id)
        shown = await unit.subscriptions.get(subscription.id, None)
        assert await unit.subscriptions.signing_keys("sub_unknown") is None
    assert stored == rotated
    assert stored.active(later(3599)) == ["whsec_" + "B" * 43, SECRET]
    assert stored.active(later(3600)) == ["whsec_" + "B" * 43]
    assert shown is not None and shown.previous_secret_expires_at == later(3600)
    without_grace = stored.rotated("whsec_" + "C" * 43, NOW, timedelta(0))
    assert without_grace == SigningKeys("whsec_" + "C" * 43, None, None)


async def test_signing_algorithm_and_public_key_round_trip(storage: Storage) -> None:
    subscription = replace(
        new_subscription(), signing_algorithm=SigningAlgorithm.ED25519, public_key="whpk_first"
    )
    hmac = new_subscription()
    async with storage.transaction() as unit:
        await unit.subscriptions.insert(subscription, "whenc:v1:0000aaaa:sealed-private-key")
        await unit.subscriptions.insert(hmac, SECRET)
        keys = await unit.subscriptions.signing_keys(subscription.id)
        assert keys is not None
        rotated = keys.rotated("whenc:v1:0000aaaa:next", NOW, timedelta(hours=1))
        await unit.subscriptions.rotate_keys(subscription.id, rotated, NOW, public_key="whpk_2")
    async with storage.read() as unit:
        shown = await unit.subscriptions.get(subscription.id, None)
        plain = await unit.subscriptions.get(hmac.id, None)
    assert shown is not None and plain is not None
    assert (shown.signing_algorithm, shown.public_key) == (SigningAlgorithm.ED25519, "whpk_2")
    assert (plain.signing_algorithm, plain.public_key) == (SigningAlgorithm.HMAC_SHA256, "")


async def test_sealed_secrets_pages_heads_and_compare_and_swap(storage: Storage) -> None:
    sealed = [
        f"whenc:v1:{kid}:value{i}" for i, kid in enumerate(["0000aaaa", "0000aaaa", "1111bbbb"])
    ]
    made = [new_subscription() for _ in sealed]
    async with storage.transaction() as unit:
        for subscription, secret in zip(made, sealed, strict=True):
            await unit.subscriptions.insert(subscription, secret)
        keys = SigningKeys("whenc:v1:2222cccc:new", sealed[0], later(60))
        await unit.subscriptions.rotate_keys(made[0].id, keys, NOW)
    async with storage.read() as unit:
        heads = await unit.subscriptions.sealed_key_heads()
        first = await unit.subscriptions.sealed_secrets_page("", 2)
        rest = await unit.subscriptions.sealed_secrets_page(first[-1].subscription_id, 2)
    assert heads == {"whenc:v1:0000aaaa", "whenc:v1:1111bbbb", "whenc:v1:2222cccc"}
    ordered = sorted(s.id for s in made)
    assert [s.subscription_id for s in first + rest] == ordered
    row = next(s for s in first + rest if s.subscription_id == made[0].id)
    assert (row.secret, row.previous_secret) == (keys.secret, sealed[0])

    resealed = SealedSecrets(row.subscription_id, "whenc:v1:3333dddd:a", "whenc:v1:3333dddd:b")
    async with storage.transaction() as unit:
        assert await unit.subscriptions.replace_sealed(row, resealed)
        # A second swap from the old values finds them changed (a rotation meanwhile).
        assert not await unit.subscriptions.replace_sealed(row, resealed)
        other = next(s for s in first + rest if s.subscription_id == made[1].id)
        assert other.previous_secret is None
        assert await unit.subscriptions.replace_sealed(
            other, SealedSecrets(other.subscription_id, "whenc:v1:3333dddd:c", None)
        )
    async with storage.read() as unit:
        stored = await unit.subscriptions.signing_keys(made[0].id)
        shown = await unit.subscriptions.get(made[0].id, None)
    assert stored == SigningKeys(resealed.secret, resealed.previous_secret, later(60))
    assert shown is not None and shown.updated_at == NOW
