from __future__ import annotations

import pytest

from webhook_grpc.config import load_settings
from webhook_grpc.services.auto_disable import exceeds_failure_rate

SETTINGS = load_settings(None, env={}).auto_disable


@pytest.mark.parametrize(
    ("total", "failed", "disabled"),
    [
        (9, 9, False),  # fewer than min_deliveries_for_disable
        (10, 10, True),
        (10, 9, False),  # 90 %
        (20, 19, False),  # exactly 95 % is not "more than"
        (21, 20, True),
        (100, 95, False),
        (100, 96, True),
        (0, 0, False),
    ],
)
def test_failure_rate_rule(total: int, failed: int, disabled: bool) -> None:
    assert exceeds_failure_rate(SETTINGS, total, failed) is disabled
