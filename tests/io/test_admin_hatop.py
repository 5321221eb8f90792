"""Debian's `hatop`, written for HAProxy's stats socket, driving a running poise: it starts
in a detached tmux session on a private tmux server (its socket in the test's temporary
directory, so no one else's tmux is touched), the test reads its screen with `tmux
capture-pane`, moves its cursor to a server and puts that server in maintenance with F10
and back with F9 (hatop's "disable/enable server on one backend" keys), and checks each
change through `show stat` on the socket.

hatop reads `show info` (it refuses to start without Maxpipes, PipesUsed, Tasks,
Run_queue...) and `show stat` by column position, and sends `prompt` and `set timeout cli`
first: this is the test that keeps those answers in HAProxy's shape.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from poise.net.admin_socket import open_admin_sockets
from tests.io.harness import Poise, Stage
from tests.support import run

pytestmark = pytest.mark.skipif(
    shutil.which("hatop") is None or shutil.which("tmux") is None,
    reason="hatop and tmux are not installed (make test installs them)",
)

WAIT = 10.0  # seconds: hatop refreshes every second
CONFIG = """
global
    stats socket {sock} level admin
defaults
    mode tcp
    timeout connect 1s
    timeout client 5s
    timeout server 5s
frontend fe
    bind 127.0.0.1:0
    default_backend be
backend be
    server alpha 127.0.0.1:{a}
    server beta 127.0.0.1:{b}
"""
SGR = re.compile(r"\x1b\[[0-9;]*m")
# The cursor line: its first attribute set includes reverse video (7).
SELECTED = re.compile(r"^\x1b\[(?:[0-9]+;)*7m(\S+)")


class Tmux:
    """A private tmux server and the one session this test starts on it."""

    def __init__(self, directory: Path, name: str) -> None:
        self.socket = directory / "tmux.sock"
        self.name = name

    async def run(self, *args: str, check: bool = True, output: bool = False) -> str:
        # Only a command whose output is read gets pipes: a tmux client that starts the
        # tmux server would hand them down to it, and they would never close.
        pipe = asyncio.subprocess.PIPE if output else asyncio.subprocess.DEVNULL
        process = await asyncio.create_subprocess_exec(
            "tmux", "-S", str(self.socket), *args,
            stdin=asyncio.subprocess.DEVNULL, stdout=pipe, stderr=pipe,
        )  # fmt: skip
        out, err = await asyncio.wait_for(process.communicate(), WAIT)
        assert process.returncode == 0 or not check, (args, err)
        return (out or b"").decode("utf-8", "replace")

    async def screen(self, escapes: bool = False) -> str:
        flags = ["-p", "-e"] if escapes else ["-p"]
        return await self.run("capture-pane", *flags, "-t", self.name, output=True)

    async def keys(self, *keys: str) -> None:
        await self.run("send-keys", "-t", self.name, *keys)

    async def selected(self) -> str | None:
        """The name on hatop's cursor line (below the column header), if any."""
        lines = (await self.screen(escapes=True)).splitlines()
        header = next(i for i, line in enumerate(lines) if "NAME" in SGR.sub("", line))
        for line in lines[header + 1 :]:
            match = SELECTED.match(line)
            if match is not None:
                return match.group(1)
        return None


@asynccontextmanager
async def hatop(sock: Path, directory: Path, name: str) -> AsyncIterator[Tmux]:
    tmux = Tmux(directory, name)
    command = f"hatop -s {sock} -i 1"
    await tmux.run("new-session", "-d", "-s", name, "-x", "200", "-y", "50", command)
    try:
        yield tmux
    finally:
        # Only this session, on this test's own tmux server (gone already if hatop quit).
        await tmux.run("kill-session", "-t", name, check=False)


async def status(sock: Path, server: str) -> str:
    reader, writer = await asyncio.open_unix_connection(str(sock))
    writer.write(b"show stat\n")
    text = (await asyncio.wait_for(reader.read(), WAIT)).decode()
    writer.close()
    for line in text.splitlines():
        fields = line.split(",")
        if fields[:2] == ["be", server]:
            return fields[17]
    raise AssertionError(f"no be/{server} in show stat")


def test_hatop_shows_poise_and_puts_a_server_in_maintenance_and_back(loop_kind: str) -> None:
    async def main() -> None:
        with tempfile.TemporaryDirectory(prefix="ph", dir="/tmp") as name:
            directory = Path(name)
            sock = directory / "admin.sock"
            async with Stage() as stage:
                a = await stage.backend("a")
                b = await stage.backend("b")
                poise = Poise(CONFIG.format(sock=sock, a=a.port, b=b.port))
                poise.runtime.admin_socks = open_admin_sockets(poise.config.global_.stats_sockets)
                await poise.__aenter__()
                stage.balancers.append(poise)
                async with hatop(sock, directory, f"poise-hatop-{loop_kind}") as tmux:
                    await watch(tmux, sock)

    run(loop_kind, main, timeout=60)


async def watch(tmux: Tmux, sock: Path) -> None:
    screen = ""

    async def shows(*words: str) -> bool:
        nonlocal screen
        screen = await tmux.screen()
        return all(word in screen for word in words)

    async def until(what: str, *words: str) -> None:
        for _ in range(int(WAIT / 0.1)):
            if await shows(*words):
                return
            await asyncio.sleep(0.1)
        raise AssertionError(f"hatop did not show {what}:\n{screen}")

    await until("poise's proxies", "poise Version:", ">>> fe", ">>> be", "alpha", "beta")
    rows = {line.split()[0]: line.split() for line in screen.splitlines() if line.strip()}
    assert rows["alpha"][1:3] == ["1", "-"]  # weight 1, "no check" (hatop prints "-")
    assert rows["FRONTEND"][1:3] == ["0", "OPEN"]
    # Down to the first server of be, then F10: "disable server be/alpha".
    for _ in range(20):
        if await tmux.selected() == "alpha":
            break
        await tmux.keys("Down")
        await asyncio.sleep(0.05)
    assert await tmux.selected() == "alpha", await tmux.screen(escapes=True)
    await tmux.keys("F10")
    await eventually_async(lambda: status(sock, "alpha"), "MAINT")
    assert await status(sock, "beta") == "no check"
    await until("alpha in maintenance", "MAINT")
    assert await tmux.selected() == "alpha"
    await tmux.keys("F9")  # "enable server be/alpha"
    await eventually_async(lambda: status(sock, "alpha"), "no check")
    await tmux.keys("q")


async def eventually_async(read: Callable[[], Awaitable[str]], wanted: str) -> None:
    """Wait until `read()` gives `wanted`."""
    last = [""]

    async def poll() -> None:
        while True:
            last[0] = await read()
            if last[0] == wanted:
                return
            await asyncio.sleep(0.05)

    try:
        await asyncio.wait_for(poll(), WAIT)
    except TimeoutError:
        raise AssertionError(f"wanted {wanted!r}, last seen {last[0]!r}") from None
