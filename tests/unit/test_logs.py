"""The two log formats and how `auto` picks one."""

from __future__ import annotations

import io
import json
import logging

from webhook_grpc.logs import ConsoleFormatter, JsonFormatter, formatter


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def record(message: str, **extra: object) -> logging.LogRecord:
    made = logging.LogRecord("webhook_grpc.x", logging.WARNING, __file__, 1, message, (), None)
    made.__dict__.update(extra)
    return made


def test_auto_is_console_on_a_terminal_and_json_otherwise() -> None:
    assert isinstance(formatter("auto", Terminal()), ConsoleFormatter)
    assert isinstance(formatter("auto", io.StringIO()), JsonFormatter)
    assert isinstance(formatter("json", Terminal()), JsonFormatter)
    assert isinstance(formatter("console", io.StringIO()), ConsoleFormatter)
    assert isinstance(formatter("text", io.StringIO()), ConsoleFormatter)


def test_console_lines_keep_the_fields() -> None:
    line = ConsoleFormatter().format(
        record("delivery attempt failed", delivery_id="dlv_1", status_code=503, error="HTTP 503")
    )
    assert line.endswith(
        " WARNING webhook_grpc.x: delivery attempt failed "
        'delivery_id=dlv_1 status_code=503 error="HTTP 503"'
    )
    assert "\n" not in line


def test_json_lines_carry_the_same_fields() -> None:
    entry = json.loads(JsonFormatter().format(record("m", delivery_id="dlv_1")))
    assert entry["level"] == "warning" and entry["delivery_id"] == "dlv_1"
