"""Resources and prompts through a running gateway: a `file:` URI or a prompt argument cannot reach
what a tool call could not, and the server's own resources and prompts still work."""

from __future__ import annotations

from pathlib import Path

import pytest
from mcp.shared.exceptions import MCPError

from bastion.codes import DENIED
from tests.e2e.support import through_stdio
from tests.e2e.test_stdio_gateway import wrap_demo

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]


async def test_file_uris_and_prompt_arguments_outside_the_roots_are_refused(home: Path, tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("alpha", encoding="utf-8")
    async with through_stdio(home, wrap_demo(tmp_path)) as client:
        for uri in ("file:///etc/passwd", "file://localhost/etc/shadow", f"file://{tmp_path}/%2e%2e/%2e%2e/etc/passwd"):
            with pytest.raises(MCPError) as caught:
                await client.read_resource(uri)
            assert caught.value.error.code == DENIED
            assert str(caught.value.error.data["rule"]).startswith("paths.")  # pyright: ignore[reportIndexIssue,reportOptionalSubscript]
        with pytest.raises(MCPError) as caught:
            await client.get_prompt("summarize_note", {"name": "../../../etc/passwd"})
        assert caught.value.error.code == DENIED
        # The benign look-alikes: the server's own scheme, a note inside the root.
        assert "alpha" in str((await client.read_resource("notes://a.txt")).contents[0])
        assert "a.txt" in str((await client.get_prompt("summarize_note", {"name": "a.txt"})).messages[0].content)
