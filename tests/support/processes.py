"""Real `webhook-grpc` processes for scale-out and crash tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Mapping

from tests.support.server import TEST_SETTINGS


def settings_env(database_url: str, **overrides: object) -> dict[str, str]:
    env = dict(os.environ)
    for name, value in {**TEST_SETTINGS, "database_url": database_url, **overrides}.items():
        if isinstance(value, list):
            value = ",".join(str(v) for v in value)
        if isinstance(value, bool):
            value = "true" if value else "false"
        env[f"WEBHOOK_GRPC_{name.upper()}"] = str(value)
    return env


class ServiceProcess:
    """`webhook-grpc <command>` in a subprocess; stopped (SIGKILL if need be) by `close`."""

    def __init__(self, command: str, env: Mapping[str, str]) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "webhook_grpc", command],
            env=dict(env),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def terminate(self, timeout: float = 20) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)

    def log(self) -> str:
        """What the process wrote to stderr (after it has exited)."""
        return self.process.stderr.read().decode() if self.process.stderr else ""

    def close(self) -> None:
        if self.process.poll() is None:
            self.kill()
        if self.process.stderr:
            self.process.stderr.close()
