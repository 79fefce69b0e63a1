"""The consoles commands print with: standard output, and standard error for messages.

Apart from `_common` so that the commands that only serve (`wrap`, `run`) never load Rich.
"""

from __future__ import annotations

from rich.console import Console

__all__ = ["console", "err_console"]

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False, soft_wrap=True)
