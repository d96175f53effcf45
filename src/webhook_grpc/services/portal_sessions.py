"""Portal sessions (SPEC §10): an admin's one-time link becomes a tenant-bound session."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from webhook_grpc.domain import portal_sessions as rules
from webhook_grpc.domain.access import Principal, Role, check_tenant_id
from webhook_grpc.domain.clock import Clock
from webhook_grpc.domain.portal_sessions import LinkRefused
from webhook_grpc.storage.ports import PortalSessionRepository, Storage


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
    def __init__(self, storage: Storage, clock: Clock) -> None:
        self._storage = storage
        self._clock = clock

    async def create_link(self, tenant_id: str, ttl: timedelta | None) -> PortalLink:
        check_tenant_id(tenant_id)
        now = self._clock()
        token = rules.new_token()
        expires_at = now + rules.session_ttl(ttl)
        async with self._storage.transaction() as unit:
            # Sessions are short-lived and few: creating one is a fine time to drop dead ones.
            await unit.portal_sessions.purge_expired(now)
            await unit.portal_sessions.add_link(rules.token_hash(token), tenant_id, now, expires_at)
        return PortalLink(token, expires_at)

    async def exchange(self, link_token: str) -> PortalSession:
        """The session a link opens; LinkRefused when it is unknown, used or expired."""
        now = self._clock()
        link_hash = rules.token_hash(link_token)
        session_token = rules.new_token()
        async with self._storage.transaction() as unit:
            sessions = unit.portal_sessions
            granted = await sessions.use_link(link_hash, rules.token_hash(session_token), now)
            if granted is None:
                raise LinkRefused(await _why_refused(sessions, link_hash))
        return PortalSession(session_token, granted.tenant_id, granted.expires_at)

    async def check(self, link_token: str) -> None:
        """LinkRefused unless the link can still be used (it is not used by this check)."""
        async with self._storage.read() as unit:
            state = await unit.portal_sessions.link_state(rules.token_hash(link_token))
        if state is None:
            raise LinkRefused(rules.UNKNOWN_LINK)
        if state.used_at is not None:
            raise LinkRefused(rules.USED_LINK)
        if state.expires_at <= self._clock():
            raise LinkRefused(rules.EXPIRED_LINK)

    async def principal(self, session_token: str) -> Principal | None:
        """The tenant principal of a live session, or None (unknown or expired)."""
        async with self._storage.read() as unit:
            found = await unit.portal_sessions.session(
                rules.token_hash(session_token), self._clock()
            )
        return None if found is None else Principal(Role.TENANT, found.tenant_id)

    async def end(self, session_token: str) -> None:
        """Sign out: the session ends now (its cookie no longer works anywhere)."""
        async with self._storage.transaction() as unit:
            await unit.portal_sessions.end_session(rules.token_hash(session_token), self._clock())


async def _why_refused(sessions: PortalSessionRepository, link_hash: str) -> str:
    state = await sessions.link_state(link_hash)
    if state is None:
        return rules.UNKNOWN_LINK
    return rules.USED_LINK if state.used_at is not None else rules.EXPIRED_LINK
