"""What follows a commit runs after it, and never after a failed unit of work."""

from __future__ import annotations

import pytest

from webhook_grpc.storage.ports import Storage

from .conftest import new_event, publish


async def test_on_commit_hooks_run_after_the_commit_only(storage: Storage) -> None:
    seen: list[str] = []

    def committed() -> None:
        seen.append("hook")

    for opening in (storage.transaction, storage.autocommit):
        seen.clear()
        async with opening() as unit:
            await unit.events.insert_with_deliveries([new_event()], [])
            unit.on_commit(committed)
            assert seen == []
        assert seen == ["hook"]

    seen.clear()
    event = new_event()
    with pytest.raises(RuntimeError):
        async with storage.transaction() as unit:
            await unit.events.insert_with_deliveries([event], [])
            unit.on_commit(committed)
            raise RuntimeError("the work failed")
    assert seen == []
    async with storage.read() as unit:
        assert await unit.events.by_ids([event["id"]]) == {}
    assert await publish(storage, [new_event()])
