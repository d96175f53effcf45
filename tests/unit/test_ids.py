from __future__ import annotations

import threading
import time
from unittest import mock

from ulid import ULID

from webhook_grpc.domain.ids import new_id


def test_shape() -> None:
    value = new_id("evt")
    prefix, _, ulid_text = value.partition("_")
    assert prefix == "evt"
    assert len(ulid_text) == 26
    assert str(ULID.from_str(ulid_text)) == ulid_text


def test_ten_thousand_ids_in_a_tight_loop_sort_in_creation_order() -> None:
    generated = [new_id("evt") for _ in range(10_000)]
    assert generated == sorted(generated)
    assert len(set(generated)) == len(generated)


def test_ids_keep_sorting_when_the_clock_steps_back() -> None:
    before = new_id("evt")
    with mock.patch.object(time, "time_ns", return_value=0):
        during = [new_id("evt") for _ in range(100)]
    after = new_id("evt")
    sequence = [before, *during, after]
    assert sequence == sorted(sequence)
    assert len(set(sequence)) == len(sequence)


def test_ids_from_many_threads_are_unique() -> None:
    results: list[list[str]] = [[] for _ in range(8)]

    def make(bucket: list[str]) -> None:
        bucket.extend(new_id("dlv") for _ in range(1_000))

    threads = [threading.Thread(target=make, args=(bucket,)) for bucket in results]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    everything = [value for bucket in results for value in bucket]
    assert len(set(everything)) == len(everything)
    for bucket in results:
        assert bucket == sorted(bucket)


def test_timestamp_is_now() -> None:
    value = ULID.from_str(new_id("sub").removeprefix("sub_"))
    assert abs(value.timestamp - time.time()) < 5
