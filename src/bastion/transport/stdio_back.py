"""A stdio MCP server as a child process: argv list, allowlisted environment, own process group.

Shutdown escalates step by step and every wait is bounded: close stdin, then SIGTERM to
the group, then SIGKILL to the group.
"""

from __future__ import annotations

import logging
import os
import signal
from collections import deque
from collections.abc import Callable, Mapping
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path

import anyio
from anyio.abc import Process

from bastion.config.model import ServerConfig
from bastion.errors import ServerUnavailable
from bastion.transport.channel import Received
from bastion.transport.jsonrpc import Frame
from bastion.transport.lines import FdStream, FrameReader, FrameWriter

__all__ = ["BASE_ENV_ALLOWLIST", "Launch", "StdioServer", "plain_launch", "server_environment"]

logger = logging.getLogger(__name__)

BASE_ENV_ALLOWLIST = ("PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR", "USER", "LOGNAME", "SHELL", "TERM")
"""What a server inherits from Bastion's environment without being told; nothing else leaks through."""

_STDERR_TAIL_LINES = 20
_STDERR_IN_REASON = 3
"""Lines of a server's last stderr that go into the reason its clients and `bastion status` see."""


def server_environment(server: ServerConfig, environ: Mapping[str, str]) -> dict[str, str]:
    env = {name: environ[name] for name in BASE_ENV_ALLOWLIST if name in environ}
    env.update({name: environ[name] for name in server.env_pass if name in environ})
    env.update(server.env)
    return env


@dataclass(frozen=True, slots=True)
class Launch:
    """What to run for a stdio server: argv, its whole environment, its working directory, and
    what to undo once it has exited (a sandbox's cgroup)."""

    argv: list[str]
    env: dict[str, str]
    cwd: str | None
    sandbox: str
    """How the server is confined, for status and records: `bwrap (system)`, `bwrap (bundled)` or `off`."""
    cleanup: Callable[[], None] = lambda: None
    cgroup: str | None = None
    """The pids cgroup holding the server's process tree, if the host gave one."""


def plain_launch(server: ServerConfig, env: dict[str, str]) -> Launch:
    """The server's own command, unconfined (only with `sandbox = "off"`, and in unit tests)."""
    assert server.command is not None
    return Launch([server.command, *server.args], env, server.cwd, "off")


@dataclass
class StdioServer:
    """One running child process speaking MCP over its stdin/stdout."""

    name: str
    process: Process
    reader: FrameReader
    writer: FrameWriter
    launch: Launch
    stderr_tail: deque[str] = field(default_factory=lambda: deque(maxlen=_STDERR_TAIL_LINES))
    _stderr_done: anyio.Event = field(default_factory=anyio.Event)

    @classmethod
    async def start(cls, name: str, launch: Launch, *, max_bytes: int, max_depth: int) -> StdioServer:
        # Plain pipes read and written with non-blocking I/O: cheaper per frame than stream protocols.
        child_stdin, to_child = os.pipe()
        from_child, child_stdout = os.pipe()
        try:
            process = await anyio.open_process(
                launch.argv,
                stdin=child_stdin,
                stdout=child_stdout,
                env=launch.env,
                cwd=Path(launch.cwd) if launch.cwd else None,
                start_new_session=True,
            )
        except OSError as exc:
            os.close(to_child)
            os.close(from_child)
            launch.cleanup()
            raise ServerUnavailable(name, f"cannot start {launch.argv[0]!r}: {exc.strerror or exc}") from exc
        finally:
            os.close(child_stdin)
            os.close(child_stdout)
        reader = FrameReader(FdStream(from_child, owned=True), max_bytes=max_bytes, max_depth=max_depth)
        return cls(name, process, reader, FrameWriter(FdStream(to_child, owned=True)), launch)

    async def receive(self) -> Received:
        return await self.reader.receive()

    async def send(self, frame: Frame) -> None:
        await self.writer.send(frame)

    async def drain_stderr(self) -> None:
        """Keep the child's stderr flowing (a full pipe would stall it) and remember its tail."""
        try:
            await self._drain()
        finally:
            self._stderr_done.set()

    async def _drain(self) -> None:
        if self.process.stderr is None:
            return
        buffer = b""
        with suppress(anyio.EndOfStream, anyio.ClosedResourceError, anyio.BrokenResourceError):
            async for chunk in self.process.stderr:
                buffer += chunk
                *lines, buffer = buffer.split(b"\n")
                for line in lines:
                    text = line.decode("utf-8", "replace").rstrip()
                    if text:
                        self.stderr_tail.append(text)
                        logger.info("[%s] %s", self.name, text, extra={"server": self.name})
                if len(buffer) > 65536:
                    buffer = buffer[-65536:]

    def exit_description(self) -> str:
        code = self.process.returncode
        if code is None:
            return "stopped answering"
        if code < 0:
            with suppress(ValueError):
                return f"was killed by {signal.Signals(-code).name}"
        last = list(self.stderr_tail)[-_STDERR_IN_REASON:]
        tail = f"; last stderr: {' | '.join(last)}" if last else ""
        return f"exited with code {code}{tail}"

    async def ended(self, within: float) -> str | None:
        """How the server ended, if it exits by itself within `within` seconds (its stderr read to the end)."""
        if not await self._wait(within):
            return None
        with anyio.move_on_after(within):
            await self._stderr_done.wait()
        return self.exit_description()

    async def aclose(self, *, grace: float = 2.0) -> None:
        """Stop the child: close its stdin, then SIGTERM, then SIGKILL to its group; every wait bounded."""
        with anyio.CancelScope(shield=True):
            with suppress(anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
                await self.writer.aclose()
            for escalation in (None, signal.SIGTERM, signal.SIGKILL):
                if escalation is not None:
                    self._signal_group(escalation)
                if await self._wait(grace):
                    break
            await self.reader.aclose()
            # Close the process's own pipe transports now, in this loop: left to the garbage
            # collector they close after the loop has, printing "Event loop is closed".
            with anyio.move_on_after(grace):
                await self.process.aclose()
            self.launch.cleanup()

    async def _wait(self, seconds: float) -> bool:
        with anyio.move_on_after(seconds):
            await self.process.wait()
            return True
        return False

    def _signal_group(self, sig: signal.Signals) -> None:
        with suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, sig)
