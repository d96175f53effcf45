"""Portal sessions (SPEC §10): an admin's one-time link becomes a tenant-bound session."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncConnection

from webhook_grpc.domain import portal_sessions as rules
from webhook_grpc.domain.access import Principal, Role, check_tenant_id
from webhook_grpc.domain.clock import Clock
from webhook_grpc.domain.portal_sessions import LinkRefused
from webhook_grpc.storage import portal_sessions as store
from webhook_grpc.storage.database import Database


@dataclass(frozen=True)
class PortalLink:
    token: str
    expires_at: datetime


@dataclass(frozen=True)
class PortalSession:
    token: str
    tenant_id: str
    expires_at: datetime

    @property
    def csrf_token(self) -> str:
        return rules.csrf_token(self.token)


class PortalSessionService:
    def __init__(self, db: Database, clock: Clock) -> None:
        self._db = db
        self._clock = clock

    async def create_link(self, tenant_id: str, ttl: timedelta | None) -> PortalLink:
        check_tenant_id(tenant_id)
        now = self._clock()
        token = rules.new_token()
        expires_at = now + rules.session_ttl(ttl)
        async with self._db.transaction() as conn:
            # Sessions are short-lived and few: creating one is a fine time to drop dead ones.
            await store.purge_expired(conn, now)
            await store.add_link(conn, rules.token_hash(token), tenant_id, now, expires_at)
        return PortalLink(token, expires_at)

    async def exchange(self, link_token: str) -> PortalSession:
        """The session a link opens; LinkRefused when it is unknown, used or expired."""
        now = self._clock()
        link_hash = rules.token_hash(link_token)
        session_token = rules.new_token()
        async with self._db.transaction() as conn:
            used = await store.use_link(conn, link_hash, rules.token_hash(session_token), now)
            if used is None:
                raise LinkRefused(await self._why_refused(conn, link_hash))
        tenant_id, expires_at = used
        return PortalSession(session_token, tenant_id, expires_at)

    async def check(self, link_token: str) -> None:
        """LinkRefused unless the link can still be used (it is not used by this check)."""
        async with self._db.read() as conn:
            try:
                expires_at, used_at = await store.link_state(conn, rules.token_hash(link_token))
            except LookupError:
                raise LinkRefused(rules.UNKNOWN_LINK) from None
        if used_at is not None:
            raise LinkRefused(rules.USED_LINK)
        if expires_at <= self._clock():
            raise LinkRefused(rules.EXPIRED_LINK)

    async def principal(self, session_token: str) -> Principal | None:
        """The tenant principal of a live session, or None (unknown or expired)."""
        async with self._db.read() as conn:
            found = await store.session_tenant(conn, rules.token_hash(session_token), self._clock())
        return None if found is None else Principal(Role.TENANT, found[0])

    async def end(self, session_token: str) -> None:
        """Sign out: the session ends now (its cookie no longer works anywhere)."""
        async with self._db.transaction() as conn:
            await store.end_session(conn, rules.token_hash(session_token), self._clock())

    async def _why_refused(self, conn: AsyncConnection, link_hash: str) -> str:
        try:
            _, used_at = await store.link_state(conn, link_hash)
        except LookupError:
            return rules.UNKNOWN_LINK
        return rules.USED_LINK if used_at is not None else rules.EXPIRED_LINK
