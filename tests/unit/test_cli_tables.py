"""The commands' plain tables: what an admin reads in a terminal."""

from __future__ import annotations

import io

from rich.console import Console

from router.cli_support import print_table


def printed(
    columns: tuple[str, ...], rows: list[tuple[str, ...]], right: tuple[str, ...]
) -> list[str]:
    buffer = io.StringIO()
    print_table(columns, rows, right=right, out=Console(file=buffer, width=120))
    return buffer.getvalue().splitlines()


def test_cells_are_printed_as_they_are_and_numbers_line_up_on_the_right() -> None:
    lines = printed(
        ("name", "count"), [("[bold]not markup[/bold]", "7"), ("library", "1234")], ("count",)
    )
    assert lines[0].split() == ["name", "count"]
    assert "[bold]not markup[/bold]" in lines[1]  # a resident's or an admin's text, verbatim
    assert lines[1].endswith("   7") and lines[2].endswith("1234")
    assert not any(c in "".join(lines) for c in "│─┃━")  # no borders: easy to grep
