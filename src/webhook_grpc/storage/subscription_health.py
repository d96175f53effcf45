"""The attempt figures behind a subscription's health, read for a page of subscriptions."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from sqlalchemy import case, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from webhook_grpc.domain.models import Attempt

from .deliveries import to_attempt
from .tables import AttemptRow, SubscriptionRow
from .tables.base import table_of

A = table_of(AttemptRow)
S = table_of(SubscriptionRow)


async def window_figures(
    conn: AsyncConnection, subscription_ids: Collection[str], since: datetime
) -> dict[str, tuple[int, int]]:
    """(attempts, failed attempts) per subscription since `since`, or since the subscription's
    failure window restarted (its last activation) when that is later."""
    query = (
        select(
            A.c.subscription_id,
            func.count(),
            func.coalesce(func.sum(case((A.c.succeeded, 0), else_=1)), 0),
        )
        .join(S, S.c.id == A.c.subscription_id)
        .where(
            A.c.subscription_id.in_(subscription_ids),
            A.c.attempted_at >= since,
            A.c.attempted_at >= S.c.failure_window_start,
        )
        .group_by(A.c.subscription_id)
    )
    return {row[0]: (int(row[1]), int(row[2])) for row in await conn.execute(query)}


async def last_attempts(
    conn: AsyncConnection, subscription_ids: Collection[str]
) -> dict[str, Attempt]:
    """The latest attempt of each subscription that has one (one index lookup each)."""
    found: dict[str, Attempt] = {}
    for subscription_id in subscription_ids:
        row = (
            await conn.execute(
                select(A)
                .where(A.c.subscription_id == subscription_id)
                .order_by(A.c.attempted_at.desc(), A.c.id.desc())
                .limit(1)
            )
        ).first()
        if row is not None:
            found[subscription_id] = to_attempt(row)
    return found
