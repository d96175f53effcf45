"""The transport's merge of a subscription's custom headers with the signed ones."""

from __future__ import annotations

from webhook_grpc.dispatch.transport import with_custom_headers

SIGNED = {"Content-Type": "application/json", "webhook-id": "evt_1", "webhook-signature": "v1,x"}


def test_custom_headers_are_added() -> None:
    merged = with_custom_headers(SIGNED, {"X-Tenant": "a"})
    assert merged == {**SIGNED, "X-Tenant": "a"}


def test_the_service_headers_win_whatever_the_case_or_what_is_stored() -> None:
    stored = {"WEBHOOK-SIGNATURE": "forged", "content-type": "text/plain", "Host": "evil", "X": "1"}
    assert with_custom_headers(SIGNED, stored) == {**SIGNED, "X": "1"}
