"""Several workers of one balancer inside one test's event loop: Siblings (net/siblings.py)
over real unix socket pairs (SOCK_SEQPACKET, one JSON object per datagram, as the master's
bus carries them), one pair per two workers. Not a stand-in for the network: the messages
are the same bytes on the same kind of socket; only the master's relay is left out.

    workers = mesh(2)   # inside the running loop
    ...                 # give workers[k] to the k-th balancer's Context
    close(workers)
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import socket
from typing import Any

from poise.net.siblings import Handler, Payload


class PairSiblings:
    def __init__(self, index: int, count: int) -> None:
        self.index = index
        self.count = count
        self.peers: list[socket.socket] = []
        self.handlers: dict[str, Handler] = {}
        self.waiting: dict[int, tuple[asyncio.Future[None], list[Payload], list[int]]] = {}
        self.ids = itertools.count(1)
        self.received: list[str] = []  # the kinds of the messages heard (for tests)

    def attach(self, sock: socket.socket) -> None:
        sock.setblocking(False)
        self.peers.append(sock)
        asyncio.get_running_loop().add_reader(sock.fileno(), self.read, sock)

    def serve(self, kind: str, handler: Handler) -> None:
        self.handlers[kind] = handler

    def broadcast(self, kind: str, payload: Payload) -> None:
        self.send_all({"op": "bus", "kind": kind, "payload": payload})

    async def gather(self, kind: str, payload: Payload, timeout: float = 1.0) -> list[Payload]:
        ident = next(self.ids)
        future = asyncio.get_running_loop().create_future()
        answers: list[Payload] = []
        self.waiting[ident] = (future, answers, [len(self.peers)])
        try:
            self.send_all({"op": "ask", "id": ident, "kind": kind, "payload": payload})
            if self.peers:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(future), timeout)
            return list(answers)
        finally:
            del self.waiting[ident]

    def send_all(self, message: dict[str, Any]) -> None:
        data = json.dumps(message).encode()
        for sock in self.peers:
            sock.send(data)

    def read(self, sock: socket.socket) -> None:
        try:
            data = sock.recv(1 << 20)
        except BlockingIOError:
            return
        if not data:
            return
        message = json.loads(data)
        op = message["op"]
        if op in ("bus", "ask"):
            self.received.append(message["kind"])
            handler = self.handlers.get(message["kind"])
            answer = handler(message["payload"]) if handler is not None else None
            if op == "ask":
                reply = {"op": "answer", "id": message["id"], "payload": answer}
                sock.send(json.dumps(reply).encode())
            return
        waiting = self.waiting.get(message["id"])
        if waiting is None:
            return
        future, answers, left = waiting
        if isinstance(message["payload"], dict):
            answers.append(message["payload"])
        left[0] -= 1
        if left[0] <= 0 and not future.done():
            future.set_result(None)

    def close(self) -> None:
        loop = asyncio.get_running_loop()
        for sock in self.peers:
            loop.remove_reader(sock.fileno())
            sock.close()
        self.peers = []


def mesh(count: int) -> list[PairSiblings]:
    """`count` workers, each joined to every other by a socket pair."""
    workers = [PairSiblings(index, count) for index in range(count)]
    for a, b in itertools.combinations(workers, 2):
        one, two = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        a.attach(one)
        b.attach(two)
    return workers


def close(workers: list[PairSiblings]) -> None:
    for worker in workers:
        worker.close()
