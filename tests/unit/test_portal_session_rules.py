"""Portal session rules: tokens, their stored hashes, the CSRF token, the lifetime allowed."""

from __future__ import annotations

from datetime import timedelta

import pytest

from webhook_grpc.domain import portal_sessions as rules
from webhook_grpc.domain.errors import InvalidArgument


def test_tokens_are_random_url_safe_and_stored_only_as_hashes() -> None:
    first, second = rules.new_token(), rules.new_token()
    assert first != second
    assert len(first) >= 43 and all(c.isalnum() or c in "-_" for c in first)
    assert rules.token_hash(first) != first
    assert rules.token_hash(first) == rules.token_hash(first)
    assert len(rules.token_hash(first)) == 64


def test_the_csrf_token_belongs_to_its_session() -> None:
    session, other = rules.new_token(), rules.new_token()
    token = rules.csrf_token(session)
    assert rules.csrf_matches(session, token)
    assert not rules.csrf_matches(other, token)
    assert not rules.csrf_matches(session, "")
    # It gives nothing away about the session token (a keyed hash, not a copy or its hash).
    assert token not in (session, rules.token_hash(session))


@pytest.mark.parametrize(
    ("requested", "allowed"),
    [
        (None, rules.DEFAULT_TTL),
        (timedelta(milliseconds=200), timedelta(milliseconds=200)),
        (rules.MAX_TTL, rules.MAX_TTL),
    ],
)
def test_session_lifetimes(requested: timedelta | None, allowed: timedelta) -> None:
    assert rules.session_ttl(requested) == allowed


@pytest.mark.parametrize(
    "requested", [timedelta(0), timedelta(seconds=-1), rules.MAX_TTL + timedelta(seconds=1)]
)
def test_lifetimes_refused(requested: timedelta) -> None:
    with pytest.raises(InvalidArgument) as refused:
        rules.session_ttl(requested)
    assert refused.value.field == "ttl"
