"""Portal links and sessions: a link is spent once (also when two use it at the same moment),
a session grants its tenant until it expires or ends, and expired rows are purged."""

from __future__ import annotations

import asyncio

from webhook_grpc.storage.ports import PortalGrant, PortalLinkState, Storage

from .conftest import NOW, later

LINK = "a" * 64
SESSION = "b" * 64


async def add_link(storage: Storage, link_hash: str = LINK, ttl: float = 3600) -> None:
    async with storage.transaction() as unit:
        await unit.portal_sessions.add_link(link_hash, "acme", NOW, later(ttl))


async def use_link(
    storage: Storage, session_hash: str = SESSION, seconds: float = 1
) -> PortalGrant | None:
    async with storage.transaction() as unit:
        return await unit.portal_sessions.use_link(LINK, session_hash, later(seconds))


async def session(
    storage: Storage, seconds: float, session_hash: str = SESSION
) -> PortalGrant | None:
    async with storage.read() as unit:
        return await unit.portal_sessions.session(session_hash, later(seconds))


async def link_state(storage: Storage) -> PortalLinkState | None:
    async with storage.read() as unit:
        return await unit.portal_sessions.link_state(LINK)


async def test_a_link_opens_one_session_of_its_tenant_until_it_expires(storage: Storage) -> None:
    await add_link(storage)
    assert await link_state(storage) == PortalLinkState(later(3600), None)

    assert await use_link(storage) == PortalGrant("acme", later(3600))

    assert await link_state(storage) == PortalLinkState(later(3600), later(1))
    assert await session(storage, 2) == PortalGrant("acme", later(3600))
    assert await session(storage, 3600) is None
    assert await session(storage, 2, session_hash="c" * 64) is None


async def test_a_link_is_spent_once(storage: Storage) -> None:
    await add_link(storage)
    assert await use_link(storage) is not None

    assert await use_link(storage, session_hash="c" * 64, seconds=2) is None
    assert await session(storage, 3, session_hash="c" * 64) is None


async def test_two_uses_at_the_same_moment_open_one_session(storage: Storage) -> None:
    await add_link(storage)

    granted = await asyncio.gather(*(use_link(storage, str(n) * 64) for n in range(4)))

    assert sum(grant is not None for grant in granted) == 1


async def test_unknown_and_expired_links_open_nothing(storage: Storage) -> None:
    assert await link_state(storage) is None
    assert await use_link(storage) is None

    await add_link(storage, ttl=10)
    assert await use_link(storage, seconds=10) is None
    assert await link_state(storage) == PortalLinkState(later(10), None)


async def test_an_ended_session_grants_nothing(storage: Storage) -> None:
    await add_link(storage)
    await use_link(storage)

    async with storage.transaction() as unit:
        await unit.portal_sessions.end_session(SESSION, later(5))

    assert await session(storage, 6) is None


async def test_purge_drops_only_what_has_expired(storage: Storage) -> None:
    await add_link(storage, "c" * 64, ttl=10)
    await add_link(storage, ttl=3600)

    async with storage.transaction() as unit:
        assert await unit.portal_sessions.purge_expired(later(10)) == 1

    async with storage.read() as unit:
        assert await unit.portal_sessions.link_state("c" * 64) is None
    assert await link_state(storage) is not None
