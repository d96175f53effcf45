"""Portal session rows: create a link, use it once, look a session up."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from .tables import PortalSessionRow
from .tables.base import table_of

P = table_of(PortalSessionRow)


async def add_link(
    conn: AsyncConnection, link_hash: str, tenant_id: str, now: datetime, expires_at: datetime
) -> None:
    await conn.execute(
        insert(P).values(
            link_hash=link_hash, tenant_id=tenant_id, created_at=now, expires_at=expires_at
        )
    )


async def use_link(
    conn: AsyncConnection, link_hash: str, session_hash: str, now: datetime
) -> tuple[str, datetime] | None:
    """Mark an unused, unexpired link used and bind it to the session: its (tenant, expiry),
    or None when it is unknown, used or expired. One statement, so two concurrent uses of
    the same link cannot both succeed."""
    row = (
        await conn.execute(
            update(P)
            .where(P.c.link_hash == link_hash, P.c.used_at.is_(None), P.c.expires_at > now)
            .values(used_at=now, session_hash=session_hash)
            .returning(P.c.tenant_id, P.c.expires_at)
        )
    ).first()
    return None if row is None else (row.tenant_id, row.expires_at)


async def link_state(conn: AsyncConnection, link_hash: str) -> tuple[datetime, datetime | None]:
    """(expires_at, used_at) of a link, for telling a used link from an expired one."""
    row = (
        await conn.execute(select(P.c.expires_at, P.c.used_at).where(P.c.link_hash == link_hash))
    ).first()
    if row is None:
        raise LookupError(link_hash)
    return row.expires_at, row.used_at


async def session_tenant(
    conn: AsyncConnection, session_hash: str, now: datetime
) -> tuple[str, datetime] | None:
    """(tenant, expiry) of a live session, or None."""
    row = (
        await conn.execute(
            select(P.c.tenant_id, P.c.expires_at).where(
                P.c.session_hash == session_hash, P.c.expires_at > now
            )
        )
    ).first()
    return None if row is None else (row.tenant_id, row.expires_at)


async def end_session(conn: AsyncConnection, session_hash: str, now: datetime) -> None:
    await conn.execute(
        update(P)
        .where(P.c.session_hash == session_hash, P.c.expires_at > now)
        .values(expires_at=now)
    )


async def purge_expired(conn: AsyncConnection, now: datetime) -> None:
    await conn.execute(delete(P).where(P.c.expires_at <= now))
