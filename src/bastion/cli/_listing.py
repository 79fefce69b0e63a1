"""Listings that never cut what the next command needs, whatever the terminal's width.

What a person copies from a listing into the next command (an alert key, an approval id, a
token's client, a secret's name), and when things happened, must be printed whole, in an
80-column terminal too. A `Listing` lays its table out itself rather than leaving it to Rich,
which shrinks every column alike and ends cut values in an ellipsis: the first line of a cell
in a key column is never narrower than its column, free-text columns share what is left and
wrap; when even the keys cannot stand side by side, each row is printed as a block of
`label  value` lines instead.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable

from rich.cells import cell_len
from rich.console import Console, ConsoleOptions, RenderResult
from rich.table import Column, Table
from rich.text import Text

__all__ = ["TEXT_FLOOR", "Listing"]

TEXT_FLOOR = 10
"""The narrowest a free-text column gets; below it the listing turns into blocks. A time written
`2026-12-05 23:24:28Z` in a free-text column therefore wraps at its space, never inside a part."""


class Listing:
    """Rows of plain text under headers; print it with `console.print`.

    Name in `keys` the columns whose cells start with what a command takes or with a time: that
    first line is kept whole; any further lines of the cell (a summary under a key) wrap. Cells
    are text, never console markup: names and summaries come from servers and clients.
    """

    def __init__(self, *headers: str, keys: Collection[str] = (), lines: bool = False) -> None:
        unknown = set(keys) - set(headers)
        if unknown:
            raise ValueError(f"key columns {sorted(unknown)} are not among the headers")
        self.headers = headers
        self.keys = tuple(header in keys for header in headers)
        self.lines = lines
        """Rule rows apart (for rows of several lines)."""
        self.rows: list[tuple[str, ...]] = []
        self.styles: list[str | None] = []

    def add(self, *cells: str, style: str | None = None) -> None:
        if len(cells) != len(self.headers):
            raise ValueError(f"a row of {len(cells)} cells under {len(self.headers)} headers")
        self.rows.append(cells)
        self.styles.append(style)

    def widths(self, width: int) -> list[int] | None:
        """The width of each column's text in a table `width` cells wide, or None if the keys do not fit."""
        natural: list[int] = []
        floor: list[int] = []
        for index, header in enumerate(self.headers):
            cells = [row[index] for row in self.rows]
            widest = max(_longest(header.splitlines()), _longest(line for cell in cells for line in cell.splitlines()))
            least = _longest(word for word in header.split())
            if self.keys[index]:
                least = max(least, _longest(cell.splitlines()[0] if cell else "" for cell in cells))
            else:
                least = max(least, min(widest, TEXT_FLOOR))
            natural.append(widest)
            floor.append(least)
        room = width - (3 * len(self.headers) + 1)  # a rule at each edge and between columns, a space each side
        if sum(floor) > room:
            return None
        widths = floor
        spare = room - sum(widths)
        growing = True
        while spare > 0 and growing:  # share the rest one cell at a time among the columns that want more
            growing = False
            for index, wanted in enumerate(natural):
                if spare > 0 and widths[index] < wanted:
                    widths[index] += 1
                    spare -= 1
                    growing = True
        return widths

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        widths = self.widths(options.max_width)
        yield self._blocks() if widths is None else self._table(widths)

    def _table(self, widths: list[int]) -> Table:
        columns = [
            Column(header, width=width, overflow="fold") for header, width in zip(self.headers, widths, strict=True)
        ]
        table = Table(*columns, show_lines=self.lines)
        for row, style in zip(self.rows, self.styles, strict=True):
            table.add_row(*(Text(cell, overflow="fold") for cell in row), style=style)
        return table

    def _blocks(self) -> Table:
        grid = Table.grid(Column(no_wrap=True), Column(overflow="fold"), padding=(0, 2))
        for number, (row, style) in enumerate(zip(self.rows, self.styles, strict=True)):
            if number:
                grid.add_row("", "")
            for header, cell in zip(self.headers, row, strict=True):
                grid.add_row(
                    Text(header.replace("\n", " / "), style="bold"), Text(cell, overflow="fold", style=style or "")
                )
        return grid


def _longest(lines: Iterable[str]) -> int:
    return max((cell_len(line) for line in lines), default=0)
