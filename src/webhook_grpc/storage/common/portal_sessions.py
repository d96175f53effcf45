"""Portal session rows: create a link, use it once, look a session up, purge dead ones."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from ..ports import PortalGrant, PortalLinkState
from ..tables import PortalSessionRow
from ..tables.base import table_of

P = table_of(PortalSessionRow)


class CorePortalSessions:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def add_link(
        self, link_hash: str, tenant_id: str, now: datetime, expires_at: datetime
    ) -> None:
        await self._conn.execute(
            insert(P).values(
                link_hash=link_hash, tenant_id=tenant_id, created_at=now, expires_at=expires_at
            )
        )

    async def use_link(
        self, link_hash: str, session_hash: str, now: datetime
    ) -> PortalGrant | None:
        row = (
            await self._conn.execute(
                update(P)
                .where(P.c.link_hash == link_hash, P.c.used_at.is_(None), P.c.expires_at > now)
                .values(used_at=now, session_hash=session_hash)
                .returning(P.c.tenant_id, P.c.expires_at)
            )
        ).first()
        return None if row is None else PortalGrant(row.tenant_id, row.expires_at)

    async def link_state(self, link_hash: str) -> PortalLinkState | None:
        query = select(P.c.expires_at, P.c.used_at).where(P.c.link_hash == link_hash)
        row = (await self._conn.execute(query)).first()
        return None if row is None else PortalLinkState(row.expires_at, row.used_at)

    async def session(self, session_hash: str, now: datetime) -> PortalGrant | None:
        query = select(P.c.tenant_id, P.c.expires_at).where(
            P.c.session_hash == session_hash, P.c.expires_at > now
        )
        row = (await self._conn.execute(query)).first()
        return None if row is None else PortalGrant(row.tenant_id, row.expires_at)

    async def end_session(self, session_hash: str, now: datetime) -> None:
        await self._conn.execute(
            update(P)
            .where(P.c.session_hash == session_hash, P.c.expires_at > now)
            .values(expires_at=now)
        )

    async def purge_expired(self, now: datetime) -> int:
        result = await self._conn.execute(delete(P).where(P.c.expires_at <= now))
        return result.rowcount
