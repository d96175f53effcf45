"""Which databases the one-process lock applies to, and its sharing within one process (the
refusal of a second process is tested end to end in tests/integration/test_cli.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from webhook_grpc.storage import process_lock


@pytest.mark.parametrize(
    "url",
    [
        "sqlite://",
        "sqlite:///:memory:",
        "sqlite:///file:shared?mode=memory&cache=shared&uri=true",
        "postgresql+psycopg://user@127.0.0.1:5432/webhooks",
    ],
)
def test_no_lock_for_postgres_or_memory(url: str) -> None:
    assert process_lock.lock_path(url) is None
    process_lock.acquire(url, "serve").release()


def test_the_lock_file_sits_beside_the_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    expected = tmp_path / "webhook-grpc.db.lock"
    assert process_lock.lock_path("sqlite:///./webhook-grpc.db") == expected
    assert process_lock.lock_path(f"sqlite:///{tmp_path}/webhook-grpc.db") == expected


def test_apps_of_one_process_share_the_lock(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    first = process_lock.acquire(url, "serve")
    second = process_lock.acquire(url, "dispatcher")
    second.release()
    first.release()
    first.release()  # a second release is a no-op
    # Fully released: the file can be taken again.
    process_lock.acquire(url, "serve").release()
    assert (tmp_path / "shared.db.lock").read_text().startswith("pid ")
