"""Every option of every `webhook-grpc` command says what it does in --help."""

from __future__ import annotations

import argparse
from collections.abc import Iterator

from webhook_grpc.cli import parser


def commands(
    command: argparse.ArgumentParser, path: str = "webhook-grpc"
) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    yield path, command
    for action in command._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from commands(sub, f"{path} {name}")


def test_every_option_has_help() -> None:
    missing = [
        f"{path} {action.option_strings or action.dest}"
        for path, command in commands(parser())
        for action in command._actions
        if not isinstance(action, argparse._SubParsersAction) and not action.help
    ]
    assert not missing, missing
