"""The README's configuration table is generated from config.py and must not drift."""

from __future__ import annotations

from pathlib import Path

from scripts.config_table import BEGIN, END, render

README = Path(__file__).resolve().parents[2] / "README.md"


def test_config_table_is_current() -> None:
    text = README.read_text()
    table = text.split(BEGIN, 1)[1].split(END, 1)[0].strip()
    assert table == render(), "run: python scripts/config_table.py --write"
