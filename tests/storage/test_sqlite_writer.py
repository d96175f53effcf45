"""SQLite only: concurrent write transactions share one writer and one COMMIT (group commit),
each acknowledged only once committed, a failing one rolled back alone."""

from __future__ import annotations

import asyncio

from webhook_grpc.storage.sqlite.storage import SqliteStorage

from .conftest import new_event

CALLERS = 16


async def test_concurrent_writers_share_commits_and_return_only_once_committed(
    sqlite_storage: SqliteStorage,
) -> None:
    events = [new_event(entity_id=f"p{i}") for i in range(CALLERS)]
    seen_on_return: list[bool] = []

    async def write(index: int) -> None:
        async with sqlite_storage.autocommit() as unit:
            await unit.events.insert_with_deliveries([events[index]], [])
        # Acknowledged: another connection must see it now.
        async with sqlite_storage.read() as reader:
            found = await reader.events.by_ids([events[index]["id"]])
        seen_on_return.append(events[index]["id"] in found)

    await asyncio.gather(*(write(i) for i in range(CALLERS)))
    assert seen_on_return == [True] * CALLERS
    assert sqlite_storage.writer.batches < CALLERS, "every caller committed alone"


async def test_a_failing_block_in_a_batch_fails_alone(sqlite_storage: SqliteStorage) -> None:
    events = [new_event(entity_id=f"p{i}") for i in range(CALLERS)]
    failing = 5

    async def write(index: int) -> None:
        async with sqlite_storage.transaction() as unit:
            await unit.events.insert_with_deliveries([events[index]], [])
            if index == failing:
                raise RuntimeError("this caller's work failed after writing")

    results = await asyncio.gather(*(write(i) for i in range(CALLERS)), return_exceptions=True)
    assert [i for i, r in enumerate(results) if isinstance(r, BaseException)] == [failing]
    assert sqlite_storage.writer.batches < CALLERS, "the callers did not share a transaction"
    async with sqlite_storage.read() as reader:
        stored = await reader.events.by_ids([e["id"] for e in events])
    assert set(stored) == {e["id"] for i, e in enumerate(events) if i != failing}


async def test_a_transaction_opened_inside_another_joins_it(
    sqlite_storage: SqliteStorage,
) -> None:
    outer, inner = new_event(entity_id="outer"), new_event(entity_id="inner")
    committed: list[str] = []

    async def nested() -> None:
        async with sqlite_storage.transaction() as unit:
            await unit.events.insert_with_deliveries([outer], [])
            async with sqlite_storage.autocommit() as inner_unit:
                await inner_unit.events.insert_with_deliveries([inner], [])
                inner_unit.on_commit(lambda: committed.append("inner"))
            assert committed == []

    # A guard against a hang (the inner one queueing behind its own caller), not a bound.
    await asyncio.wait_for(nested(), 60)
    assert committed == ["inner"]
    async with sqlite_storage.read() as reader:
        assert set(await reader.events.by_ids([outer["id"], inner["id"]])) == {
            outer["id"],
            inner["id"],
        }
