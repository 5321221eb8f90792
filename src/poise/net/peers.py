"""The peers of a `peers` section, on the network (the protocol itself is pure:
core/peers): poise listens where its own peer line (or the section's `bind`) says, calls
each other peer, and keeps one session per peer, as HAProxy 2.6 does (src/peers.c).

- Calling: the hello, then the peer's status line; anything but 200 closes, and the call
  is tried again 5 s later (HAProxy's PEER_RECONNECT_TIMEOUT), as after a lost session.
- Accepting: the caller's three lines are checked (core/peers/session.check_hello) and
  answered with HAProxy's status; a caller for which a session already exists replaces
  it (HAProxy kills the older one: both ends calling at once settle on one session).
- Then: every 100 ms the entries our rules touched go to every session, each with the next
  update id of its table; a heartbeat leaves after 3 s without sending and a session
  without a word from the peer for 10 s is closed. A new session asks the peer once for
  a resync (the whole table, which a starting poise wants) and teaches its own entries.
A peer that sends what cannot be read is told so (HAProxy's error message) and dropped;
the traffic never waits for a peer.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Callable, Coroutine
from typing import Any

from poise.config.model import Address
from poise.config.model_peers import Peers
from poise.core.peers import wire
from poise.core.peers.session import Closed, Session, check_hello, read_line
from poise.core.peers.state import CONNECTED, CONNECTING, SECTIONS, PeerState, SectionState
from poise.core.sticktable import Table
from poise.net.logsink import console

FLUSH = 0.1  # seconds between two pushes of the touched entries
HEARTBEAT = 3.0  # PEER_HEARTBEAT_TIMEOUT
RECONNECT = 5.0  # PEER_RECONNECT_TIMEOUT
SILENCE = 10.0  # a session with no message for this long is dead
HELLO_TIMEOUT = 5.0
MAX_PENDING = 16 << 20  # bytes a peer may leave unread before its session is dropped


class _Link:
    """One established session with a peer and its socket."""

    __slots__ = ("name", "received_at", "sent_at", "session", "writer")

    def __init__(self, name: str, session: Session, writer: asyncio.StreamWriter) -> None:
        self.name = name
        self.session = session
        self.writer = writer
        loop = asyncio.get_running_loop()
        self.sent_at = self.received_at = loop.time()

    def send(self, data: bytes) -> None:
        writer = self.writer
        if data and not writer.is_closing():  # (a write after a close raises)
            if writer.transport.get_write_buffer_size() > MAX_PENDING:
                writer.close()  # a peer that does not read: dropped, never waited for
                return
            writer.write(data)
            self.sent_at = asyncio.get_running_loop().time()


class PeersSection:
    """The running side of one `peers` section for the local peer `local`."""

    def __init__(
        self, section: Peers, local: str, tables: dict[str, Table], now: Callable[[], int]
    ) -> None:
        self.section = section
        self.local = local
        self.tables = tables
        self.now = now
        self.links: dict[str, _Link] = {}
        self.update_ids = dict.fromkeys(tables, 0)
        self.server: asyncio.AbstractServer | None = None
        self.tasks: set[asyncio.Task[None]] = set()
        self.stopped = False
        self.resynced = False  # a peer has taught us its tables
        # What `show peers` and `show info` report (core/peers/state.py).
        self.state = SectionState(
            section.name,
            time.strftime("%d/%b/%Y:%H:%M:%S"),
            [PeerState(p.name, p.name == local, _address(p.address)) for p in section.peers],
            list(tables),
        )
        for table in tables.values():
            table.changed = {}

    async def start(self) -> None:
        SECTIONS.insert(0, self.state)  # HAProxy lists the last declared section first
        address = self.section.listen(self.local)
        if address is not None and address.port is not None:
            host = address.host or "127.0.0.1"
            await self.call_old(host, address.port)
            try:
                self.server = await asyncio.start_server(
                    self.accepted,
                    address.host or None,
                    address.port,
                    reuse_address=True,
                    reuse_port=True,  # a reload: the old worker still listens there
                )
            except OSError as exc:
                console("ALERT", f"Starting peers {self.section.name}: cannot bind "
                        f"{address}: {exc.strerror}")  # fmt: skip
        for peer in self.section.remotes(self.local):
            self.spawn(self.call(peer.name))
        self.spawn(self.ticker())

    async def call_old(self, host: str, port: int) -> None:
        """A reload: before listening, call our own address as our own peer, as HAProxy's
        new process calls the old one; the old worker answers and teaches its tables
        (the session's resync request). Nothing there: a first start."""
        try:  # only the connection comes before listening: the traffic never waits
            reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), 1.0)
        except (TimeoutError, OSError):
            return
        self.spawn(self.learn_from_old(reader, writer))

    async def learn_from_old(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        try:
            with contextlib.suppress(TimeoutError, OSError, RuntimeError):
                writer.write(wire.hello(self.local, self.local, os.getpid()))
                line = await asyncio.wait_for(reader.readline(), HELLO_TIMEOUT)
                if line.strip() == b"200":
                    await self.run(self.local, reader, writer)
        finally:
            writer.close()

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def stop(self) -> None:
        self.stopped = True
        if self.state in SECTIONS:
            SECTIONS.remove(self.state)
        if self.server is not None:
            self.server.close()
        for link in list(self.links.values()):
            link.writer.close()
        for task in list(self.tasks):
            task.cancel()

    # -- sessions -----------------------------------------------------------------------

    async def call(self, name: str) -> None:
        peer = self.section.peer(name)
        assert peer is not None and peer.address is not None
        shown = self.state.peer(name)
        assert shown is not None
        loop = asyncio.get_running_loop()
        while not self.stopped:
            if name not in self.links:
                shown.new_conn += 1
                shown.status = CONNECTING
                with contextlib.suppress(OSError, TimeoutError, ConnectionError):
                    await self.call_once(name, peer.address.host, peer.address.port or 0)
            shown.reconnect = loop.time() + RECONNECT
            await asyncio.sleep(RECONNECT)

    async def call_once(self, name: str, host: str, port: int) -> None:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), HELLO_TIMEOUT)
        try:
            shown = self.state.peer(name)
            assert shown is not None
            shown.status = CONNECTED
            writer.write(wire.hello(name, self.local, os.getpid()))
            line = await asyncio.wait_for(reader.readline(), HELLO_TIMEOUT)
            code = line.strip()
            shown.status = int(code) if code.isdigit() and len(code) < 4 else 0
            shown.last_handshake = asyncio.get_running_loop().time()
            if code != b"200" or name in self.links:
                return
            await self.run(name, reader, writer)
        finally:
            writer.close()

    async def accepted(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        buffer = bytearray()
        lines: list[str] = []
        names = [p.name for p in self.section.peers]  # ourselves too: a new worker
        name: str | None = None
        try:
            while name is None:
                data = await asyncio.wait_for(reader.read(4096), HELLO_TIMEOUT)
                if not data:
                    return
                buffer += data
                while name is None and (line := read_line(buffer)) is not None:
                    lines.append(line)
                    name = check_hello(lines, self.local, names)
            shown = self.state.peer(name)
            assert shown is not None
            old = self.links.pop(name, None)
            if old is not None:  # both ends called: the newer session wins
                old.writer.close()
                shown.coll += 1
            if writer.is_closing():
                return
            writer.write(wire.status(wire.SUCCESS))
            shown.status, shown.last_handshake = wire.SUCCESS, asyncio.get_running_loop().time()
            await self.run(name, reader, writer, bytes(buffer))
        except Closed as exc:
            if not writer.is_closing():
                writer.write(exc.reply)
            console("WARNING", f"peers {self.section.name}: refused a peer: {exc.reason}")
        except (TimeoutError, OSError, RuntimeError):  # the peer went: nothing to say
            pass
        finally:
            with contextlib.suppress(OSError, RuntimeError):
                writer.close()

    async def run(
        self,
        name: str,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        first: bytes = b"",
    ) -> None:
        session = Session(self.tables, self.now)
        link = self.links[name] = _Link(name, session, writer)
        shown = self.state.peer(name)
        assert shown is not None
        shown.active = shown.established = True
        shown.src, shown.dst = _ends(writer)
        try:
            if not self.resynced:
                link.send(wire.control(wire.RESYNC_REQUEST))
            self.teach_all(link)
            data = first
            while True:
                if data:
                    link.received_at = asyncio.get_running_loop().time()
                    link.send(session.feed(data))
                    shown.rx_hbt = session.heartbeats
                    if session.teach:
                        link.send(session.lesson(self.update_ids))
                    if session.learned:
                        self.resynced = True
                data = await reader.read(65536)
                if not data:
                    return
        except Closed as exc:
            link.send(exc.reply)
            shown.proto_err += 1
            console("WARNING", f"peers {self.section.name}: session with '{name}' closed: "
                    f"{exc.reason}")  # fmt: skip
        finally:
            if self.links.get(name) is link:
                del self.links[name]
                shown.active = shown.established = False
                shown.src = shown.dst = ""
                shown.heartbeat = None

    def teach_all(self, link: _Link) -> None:
        """A new session: every entry we have, so that the peer has them too."""
        for name, table in self.tables.items():
            entries = list(table.live())
            if entries:
                pushed = [(self.next_id(name), entry) for entry in entries]
                link.send(link.session.push(name, pushed))

    def next_id(self, name: str) -> int:
        self.update_ids[name] = (self.update_ids[name] + 1) & 0xFFFF_FFFF
        return self.update_ids[name]

    # -- the timer ----------------------------------------------------------------------

    async def ticker(self) -> None:
        loop = asyncio.get_running_loop()
        while not self.stopped:
            await asyncio.sleep(FLUSH)
            self.flush()
            now = loop.time()
            for link in list(self.links.values()):
                if now - link.received_at > SILENCE:
                    link.writer.close()
                elif now - link.sent_at >= HEARTBEAT:
                    link.send(wire.control(wire.HEARTBEAT))
                    shown = self.state.peer(link.name)
                    if shown is not None:
                        shown.tx_hbt += 1
                shown = self.state.peer(link.name)
                if shown is not None:
                    shown.heartbeat = link.sent_at + HEARTBEAT

    def flush(self) -> None:
        """The entries touched since the last flush go to every session."""
        for name, table in self.tables.items():
            changed = table.changed
            if not changed:
                continue
            entries = [e for e in changed.values() if table.entries.get(e.key) is e]
            changed.clear()
            if not entries:
                continue
            pushed = [(self.next_id(name), entry) for entry in entries]
            for link in list(self.links.values()):
                link.send(link.session.push(name, pushed))


def _address(address: Address | None) -> str:
    if address is None:
        return "0.0.0.0:0"
    host = f"[{address.host}]" if ":" in address.host else address.host
    return f"{host}:{address.port or 0}"


def _ends(writer: asyncio.StreamWriter) -> tuple[str, str]:
    """The session's source and destination as `show peers` prints them."""
    found = []
    for name in ("peername", "sockname"):
        where = writer.get_extra_info(name)
        found.append(f"{where[0]}:{where[1]}" if isinstance(where, tuple) else "")
    return found[0], found[1]


def local_name(global_localpeer: str | None) -> str:
    """The local peer's name: `-L` (HAPROXY_LOCALPEER, which poise run sets as HAProxy
    does), `localpeer`, or the host name."""
    import socket

    return os.environ.get("HAPROXY_LOCALPEER") or global_localpeer or socket.gethostname()


def start_peers(
    sections: tuple[Peers, ...],
    tables: dict[str, Table],
    local: str,
    now: Callable[[], int],
) -> list[PeersSection]:
    """A running PeersSection for each section that is enabled and has the local peer
    (HAProxy warns of the others and leaves their tables local)."""
    running = []
    for section in sections:
        if section.disabled:
            continue
        if section.peer(local) is None:
            console("WARNING", f"Removing incomplete section 'peers {section.name}' "
                    f"(no peer named '{local}').")  # fmt: skip
            continue
        shared = {n: t for n, t in tables.items() if t.config.peers == section.name}
        running.append(PeersSection(section, local, shared, now))
    return running
