"""The bus between the workers of one balancer (`nbthread N`): the master relays.

Each worker already has a channel with the master (handover.py: a unix SOCK_SEQPACKET pair,
one JSON object per datagram). The workers of one generation talk over these channels:
the master passes a worker's message on to the other workers of the same generation (a
worker being replaced is not there; the next generation is not either). A gather is asked
of the workers that serve only: one still starting would answer once it serves, too late. `Bus` is a
worker's side, the Siblings of net/siblings.py; `Relay` is the master's.

Messages (worker -> master -> worker):
  {"op": "bus", "kind": K, "payload": P}            a broadcast; relayed with "from": SLOT
  {"op": "ask", "id": I, "kind": K, "payload": P}   a gather; relayed with "from": SLOT,
                                                    and the master tells the asker how many
                                                    it asked: {"op": "asked", "id": I,
                                                    "peers": M}
  {"op": "answer", "id": I, "to": SLOT, "payload": P or null}   back to the asker
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from poise.net.logsink import console
from poise.net.siblings import Handler, Payload
from poise.process.handover import Channel

RELAYED = ("bus", "ask", "answer")

Message = dict[str, Any]


class Peer(Protocol):
    """A worker as the master holds it (master.Child)."""

    channel: Channel
    reading: bool
    serving: bool  # it said it is ready: it answers
    slot: int
    generation: int


class Relay:
    """The master's side: passes each worker's bus message on."""

    def __init__(self, workers: Mapping[int, Peer]) -> None:
        self.workers = workers

    def relay(self, pid: int, message: Message) -> list[str]:
        """Pass a message from worker `pid` on; the problems to log."""
        sender = self.workers.get(pid)
        if sender is None:
            return []
        peers = [
            (other, w)
            for other, w in self.workers.items()
            if other != pid and w.reading and w.generation == sender.generation
        ]
        op = message.get("op")
        if op == "ask":  # a worker still starting answers nothing: the gather won't wait
            peers = [(p, w) for p, w in peers if w.serving]
        if op == "answer":
            to = message.get("to")
            peers = [(p, w) for p, w in peers if w.slot == to]
            out = {"op": "answer", "id": message.get("id"), "payload": message.get("payload")}
        else:
            out = {k: message.get(k) for k in ("op", "id", "kind", "payload") if k in message}
        out["from"] = sender.slot
        problems: list[str] = []
        sent = 0
        for other, worker in peers:
            try:
                worker.channel.send(out)
                sent += 1
            except OSError as exc:  # full or closed: that worker misses it
                problems.append(f"Cannot relay a message to worker ({other}): {exc}")
        if op == "ask":
            with contextlib.suppress(OSError):
                sender.channel.send({"op": "asked", "id": message.get("id"), "peers": sent})
        return problems


@dataclass(slots=True)
class _Gathering:
    future: asyncio.Future[None]
    answers: list[Payload] = field(default_factory=list)
    heard: int = 0
    expected: int | None = None  # known once the master says how many it asked

    def check(self) -> None:
        done = self.expected is not None and self.heard >= self.expected
        if done and not self.future.done():
            self.future.set_result(None)


class Bus:
    """A worker's side: its Siblings (net/siblings.py) when there are several workers."""

    def __init__(self, index: int, count: int, send: Callable[[Message], None]) -> None:
        self.index = index
        self.count = count
        self._send = send
        self._handlers: dict[str, Handler] = {}
        self._waiting: dict[int, _Gathering] = {}
        self._ids = itertools.count(1)

    def serve(self, kind: str, handler: Handler) -> None:
        self._handlers[kind] = handler

    def broadcast(self, kind: str, payload: Payload) -> None:
        self._post({"op": "bus", "kind": kind, "payload": payload})

    async def gather(self, kind: str, payload: Payload, timeout: float = 1.0) -> list[Payload]:
        ident = next(self._ids)
        waiting = _Gathering(asyncio.get_running_loop().create_future())
        self._waiting[ident] = waiting
        try:
            if not self._post({"op": "ask", "id": ident, "kind": kind, "payload": payload}):
                return []
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(waiting.future), timeout)
            return list(waiting.answers)
        finally:
            del self._waiting[ident]

    def _post(self, message: Message) -> bool:
        try:
            self._send(message)
        except OSError:  # the master is gone (the worker stops) or the channel is full
            return False
        return True

    def receive(self, message: Message) -> None:
        """A bus message the master relayed (any other op is ignored)."""
        op = message.get("op")
        if op in ("bus", "ask"):
            answer = self._call(message)
            if op == "ask":
                reply = {"op": "answer", "id": message.get("id"), "to": message.get("from")}
                self._post({**reply, "payload": answer})
            return
        waiting = self._waiting.get(message.get("id"))  # type: ignore[arg-type]
        if waiting is None:  # too late: that gather is over
            return
        if op == "asked":
            peers = message.get("peers")
            waiting.expected = peers if isinstance(peers, int) else 0
        elif op == "answer":
            waiting.heard += 1
            payload = message.get("payload")
            if isinstance(payload, dict):
                waiting.answers.append(payload)
        waiting.check()

    def _call(self, message: Message) -> Payload | None:
        handler = self._handlers.get(str(message.get("kind")))
        payload = message.get("payload")
        if handler is None or not isinstance(payload, dict):
            return None
        try:
            return handler(payload)
        except Exception as exc:  # a bug in a handler: the others still get answers
            console("ALERT", f"Worker #{self.index}: '{message.get('kind')}' failed: {exc!r}")
            return None
