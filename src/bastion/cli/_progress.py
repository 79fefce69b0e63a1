"""Progress for long commands: a live bar on stderr when it is a terminal, nothing when piped.

`audit verify`, `report`, `inventory` and `pin` use this one helper, so a script that pipes
or captures their output never sees spinner frames or escape codes, and a person at a
terminal sees what is happening. The bar is transient: it is gone once the work is done.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Generator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)

from bastion.cli._console import err_console

__all__ = ["Update", "on_terminal", "progress"]

Update = Callable[[int, int | None], None]
"""Report progress: (done, total); a total of None keeps the bar indeterminate."""


def on_terminal(console: Console) -> bool:
    """Whether `console` writes to an interactive terminal (not a pipe, a file, or a dumb terminal)."""
    isatty = getattr(console.file, "isatty", None)
    return bool(isatty is not None and isatty()) and not console.is_dumb_terminal


def _ignore(_done: int, _total: int | None = None) -> None:
    return None


@contextmanager
def progress(description: str, unit: str | None = None, *, console: Console | None = None) -> Generator[Update]:
    """A transient progress bar while the block runs, on stderr if it is a terminal; else a no-op.

    With `unit`, the bar counts (`12/40 entries`) once a total is reported."""
    shown = console or err_console
    if not on_terminal(shown):
        yield _ignore
        return
    columns: list[ProgressColumn] = [SpinnerColumn(), TextColumn(description), BarColumn()]
    if unit is not None:
        columns += [MofNCompleteColumn(), TextColumn(unit)]
    columns.append(TimeElapsedColumn())
    # Standard output goes through the bar only when it shares the terminal; piped, it stays untouched.
    with Progress(*columns, console=shown, transient=True, redirect_stdout=sys.stdout.isatty()) as bar:
        task = bar.add_task(description, total=None)

        def update(done: int, total: int | None = None) -> None:
            bar.update(task, completed=done, total=total)

        yield update
