"""The repositories a unit of work offers, as the services and the dispatcher use them. Each
database engine has a driver implementing them (`storage/sqlite/`, `storage/postgresql/`);
tests/storage/ holds the contract both must meet."""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import datetime
from typing import Protocol

from webhook_grpc.domain.cursors import FeedPosition
from webhook_grpc.domain.deliveries import AttemptRecord
from webhook_grpc.domain.models import (
    Attempt,
    Delivery,
    DeliveryStatus,
    DisabledReason,
    EventType,
    StoredEvent,
    Subscription,
    SubscriptionChanges,
    SubscriptionStatus,
)
from webhook_grpc.domain.projection import Classification
from webhook_grpc.domain.signing import SigningKeys

from .records import (
    LeasedWork,
    LeaseRequest,
    NewDelivery,
    NewEvent,
    PortalGrant,
    PortalLinkState,
    PublishContext,
    SealedSecrets,
)


class EventRepository(Protocol):
    async def publish_context(self, event_types: set[str], tenant_ids: set[str]) -> PublishContext:
        """The registered types among `event_types`, their schemas and the active recipients
        of `tenant_ids`. A driver may answer from what it kept of an earlier call; the insert
        it is given to then checks that it is still current."""
        ...

    async def insert_with_deliveries(
        self,
        events: Sequence[NewEvent],
        deliveries: Sequence[NewDelivery],
        context: PublishContext | None = None,
    ) -> dict[str, FeedPosition]:
        """Insert events and the deliveries of those inserted, atomically; an event whose
        (tenant_id, idempotency_key) exists already is skipped with its deliveries. Returns
        the feed position of each inserted event by id. `context`, the one the rows were
        made from: raises StaleContext, inserting nothing, if it was kept from an earlier
        call and the database no longer matches it."""
        ...

    async def by_idempotency_keys(
        self, tenant_id: str, keys: Sequence[str]
    ) -> dict[str, StoredEvent]: ...

    async def by_ids(self, event_ids: Sequence[str]) -> dict[str, StoredEvent]: ...

    async def not_delivered_to(
        self,
        tenant_id: str,
        subscription_id: str,
        since: datetime,
        until: datetime | None,
        *,
        after: tuple[datetime, int] | None,
        limit: int,
    ) -> list[StoredEvent]:
        """Up to `limit` of the tenant's events published in [since, until) (until None: no
        end) that have no delivery to `subscription_id` that succeeded or is still pending (one
        that failed or was cancelled does not count), ordered by
        (published_at, position's seq) and starting after `after` in that order: what
        ReplayEvents may queue."""
        ...


class DeliveryRepository(Protocol):
    async def relax_durability(self) -> None:
        """Let this transaction commit without waiting for the log flush, where the engine
        can. Only for the dispatcher's bookkeeping (leases, attempt records): a crash right
        after means a lease taken again or an attempt made again, which at-least-once
        delivery allows. Publishing never uses this."""
        ...

    async def lease_work(self, request: LeaseRequest) -> LeasedWork:
        """Lease what `request` asks for (never rows another dispatcher holds), and load what
        attempting them takes. The lease moves next_attempt_at to `lease_until`, so the rows
        fall due again by themselves if this process dies.

        Subscriptions under delivery controls (SPEC §11) are leased one at a time, under a
        lock on their row that other dispatchers skip: of a FIFO subscription only its oldest
        pending delivery in feed order, when it is due and no other delivery of it is leased;
        of a rate-limited one at most the slots its shared GCRA state (`next_slot_at`) grants
        from now, each leased delivery carrying its slot as `not_before`."""
        ...

    async def next_due_after(self, now: datetime) -> datetime | None:
        """When the next pending delivery falls due after `now`: a scheduled retry, or a
        lease that expires."""
        ...

    async def release(self, lease_token: str, ids: Sequence[str], now: datetime) -> None:
        """Give leased, unattempted deliveries back so any dispatcher can take them at once."""
        ...

    async def cancel(self, ids: Sequence[str], now: datetime) -> None: ...

    async def cancel_pending(self, subscription_id: str, now: datetime) -> int: ...

    async def record_attempts(self, records: Sequence[AttemptRecord]) -> None:
        """Store attempts and move their deliveries on. A delivery whose lease was lost
        keeps the newer lease's state; the attempt itself is still recorded."""
        ...

    async def failure_figures(self, subscription_id: str, since: datetime) -> tuple[int, int]:
        """(attempts, failed attempts) of a subscription since a time."""
        ...

    async def window_figures(
        self, subscription_ids: Collection[str], since: datetime
    ) -> dict[str, tuple[int, int]]:
        """(attempts, failed attempts) per subscription since `since`, or since the
        subscription's failure window restarted (its last activation) when that is later.
        A subscription without such attempts is left out."""
        ...

    async def last_attempts(self, subscription_ids: Collection[str]) -> dict[str, Attempt]:
        """The latest attempt of each subscription that has one."""
        ...

    async def get(self, delivery_id: str, tenant_id: str | None) -> Delivery | None: ...

    async def list_page(
        self,
        tenant_id: str,
        *,
        subscription_id: str = "",
        status: DeliveryStatus | None = None,
        event_id: str = "",
        before: tuple[datetime, str] | None = None,
        limit: int,
    ) -> list[Delivery]: ...

    async def reschedule(
        self,
        now: datetime,
        *,
        delivery_id: str | None = None,
        subscription_id: str | None = None,
        from_status: Collection[DeliveryStatus],
        created_since: datetime | None = None,
    ) -> int:
        """Make finished deliveries pending again, due now, with the retry schedule
        restarted (attempt_count 0; earlier attempts stay in the history)."""
        ...

    async def insert(self, deliveries: Sequence[NewDelivery]) -> None:
        """Insert deliveries of events already stored (ReplayEvents)."""
        ...

    async def pending_summary(self) -> tuple[int, datetime | None]:
        """How many deliveries are pending, and the earliest due time among them."""
        ...


class SubscriptionRepository(Protocol):
    async def lock_tenant(self, tenant_id: str) -> None:
        """Serialise subscription writes of one tenant until the transaction ends."""
        ...

    async def count_for_tenant(self, tenant_id: str) -> int: ...

    async def insert(self, subscription: Subscription, secret: str) -> None:
        """Store a new subscription with its signing secret, sealed (encryption/box.py): storage
        never sees a usable secret. Its failure window starts at its creation."""
        ...

    async def get(self, subscription_id: str, tenant_id: str | None) -> Subscription | None: ...

    async def signing_keys(self, subscription_id: str) -> SigningKeys | None:
        """The keys as stored: sealed."""
        ...

    async def list_page(
        self,
        tenant_id: str,
        status: SubscriptionStatus | None,
        after: tuple[datetime, str] | None,
        limit: int,
    ) -> list[Subscription]: ...

    async def change(
        self, subscription_id: str, changes: SubscriptionChanges, now: datetime
    ) -> None:
        """Apply the fields of `changes` that are set (patterns already validated)."""
        ...

    async def activate(self, subscription_id: str, now: datetime) -> None:
        """Active again, with a failure window starting now (old failures must not disable
        it again at once)."""
        ...

    async def disable_if_active(
        self, subscription_id: str, reason: DisabledReason, now: datetime
    ) -> bool:
        """Disable an active subscription; False when it was not active."""
        ...

    async def rotate_keys(
        self,
        subscription_id: str,
        keys: SigningKeys,
        now: datetime,
        public_key: str | None = None,
    ) -> None:
        """Store sealed `keys` (and, for Ed25519, the new public key; None: unchanged)."""
        ...

    async def sealed_key_heads(self) -> set[str]:
        """The distinct beginnings (SEALED_HEAD_LENGTH characters) of every stored secret and
        previous secret: which encryption keys the rows need."""
        ...

    async def sealed_secrets_page(self, after_id: str, limit: int) -> list[SealedSecrets]:
        """Up to `limit` subscriptions' stored secrets, by id, after `after_id`."""
        ...

    async def replace_sealed(self, current: SealedSecrets, resealed: SealedSecrets) -> bool:
        """Store the same secrets sealed again (re-encryption; nothing else changes), unless
        they are no longer `current` (rotated meanwhile): then False."""
        ...

    async def delete(self, subscription_id: str) -> None: ...

    async def failure_window_start(self, subscription_id: str) -> datetime | None: ...


class PortalSessionRepository(Protocol):
    """Portal links and the sessions they open (SPEC §10), by the hashes of their tokens."""

    async def add_link(
        self, link_hash: str, tenant_id: str, now: datetime, expires_at: datetime
    ) -> None: ...

    async def use_link(
        self, link_hash: str, session_hash: str, now: datetime
    ) -> PortalGrant | None:
        """Mark an unused, unexpired link used and bind it to the session, in one statement
        (two concurrent uses of one link cannot both succeed): what it grants, or None when
        it is unknown, used or expired."""
        ...

    async def link_state(self, link_hash: str) -> PortalLinkState | None: ...

    async def session(self, session_hash: str, now: datetime) -> PortalGrant | None:
        """What a live session grants, or None (unknown or expired)."""
        ...

    async def end_session(self, session_hash: str, now: datetime) -> None:
        """The session expires now."""
        ...

    async def purge_expired(self, now: datetime) -> int:
        """Delete links and sessions expired by `now`; how many."""
        ...


class RegistryRepository(Protocol):
    async def upsert_type(
        self,
        event_type: str,
        entity: str,
        description: str,
        now: datetime,
        *,
        built_in: bool = False,
        overwrite: bool = True,
    ) -> None: ...

    async def upsert_fields(
        self,
        entity: str,
        fields: Mapping[str, Classification],
        now: datetime,
        *,
        overwrite: bool = True,
    ) -> None: ...

    async def list_types(self, entity: str | None = None) -> list[EventType]: ...

    async def type_names(self) -> set[str]: ...

    async def get_type(self, event_type: str) -> EventType | None: ...

    async def entity_fields(self, entities: set[str]) -> dict[str, dict[str, Classification]]:
        """The field schema of each entity asked for (an entity without fields maps to {})."""
        ...


class FeedRepository(Protocol):
    """Events of one tenant in feed order, never past the visibility horizon: a reader never
    skips an event that commits later at an earlier position (docs/FEED_ORDERING.md)."""

    async def read_page(
        self,
        tenant_id: str,
        after: FeedPosition,
        limit: int,
        patterns: Sequence[str] = (),
        entity_id: str = "",
    ) -> list[StoredEvent]: ...

    async def read_sized(
        self,
        tenant_id: str,
        after: FeedPosition,
        limit: int,
        patterns: Sequence[str] = (),
        entity_id: str = "",
    ) -> list[tuple[StoredEvent, int]]:
        """Like `read_page`, each event with the length of its stored JSON."""
        ...

    async def head(self) -> FeedPosition:
        """A position after every event a reader may already have seen, before every later
        one."""
        ...


class RetentionRepository(Protocol):
    async def try_lock(self) -> bool:
        """One purger at a time across processes; held until the transaction ends."""
        ...

    async def purge_batch(self, cutoff: datetime, limit: int) -> int:
        """Delete up to `limit` events published before `cutoff` (deliveries and attempts
        with them) and raise each affected tenant's watermark. Returns how many."""
        ...

    async def purged_through(self, tenant_id: str) -> FeedPosition | None: ...

    async def oldest_published_at(self, tenant_id: str) -> datetime | None: ...


class StateRepository(Protocol):
    """Named values every process must agree on."""

    async def get_or_create(self, name: str, make: Callable[[], str]) -> str:
        """The stored value; the first process to ask stores `make()`."""
        ...

    async def get(self, name: str) -> str | None: ...

    async def put(self, name: str, value: str) -> None: ...
