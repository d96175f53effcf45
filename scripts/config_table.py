"""Print the README's configuration table from config.py (the one source of truth).

`python scripts/config_table.py --write` replaces the table between the README's markers."""

from __future__ import annotations

import sys
from pathlib import Path

from webhook_grpc.config import settings_table

README = Path(__file__).resolve().parent.parent / "README.md"
BEGIN = "<!-- config-table:begin -->"
END = "<!-- config-table:end -->"


def render() -> str:
    lines = ["| setting | default | meaning |", "|---|---|---|"]
    for name, default, doc in settings_table():
        lines.append(f"| `{name}` | `{default}` | {doc} |")
    return "\n".join(lines)


def write() -> None:
    text = README.read_text()
    head, _, rest = text.partition(BEGIN)
    _, _, tail = rest.partition(END)
    README.write_text(f"{head}{BEGIN}\n{render()}\n{END}{tail}")


if __name__ == "__main__":
    if sys.argv[1:] == ["--write"]:
        write()
    else:
        print(render())
