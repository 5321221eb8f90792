"""Run poise inside a test's event loop from configuration text, and receive its logs on a
real UDP syslog socket.

Listeners may be written with port 0; `Poise.port(frontend)` says which port was bound.
"""

from __future__ import annotations

import asyncio
import re
import ssl
from types import TracebackType

from poise.config.haproxy import parse
from poise.net.siblings import Siblings
from poise.process.runtime import Runtime
from tests.support import Backend, eventually
from tests.webapp import WebApp


class LogReceiver(asyncio.DatagramProtocol):
    """A syslog receiver on 127.0.0.1 (what a user's rsyslog would be)."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.transport: asyncio.DatagramTransport | None = None
        self.port = 0

    async def start(self) -> LogReceiver:
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(
            lambda: self, local_addr=("127.0.0.1", 0)
        )
        self.transport = transport
        self.port = transport.get_extra_info("sockname")[1]
        return self

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        self.lines.append(data.decode("utf-8", "replace").rstrip("\n"))

    def matching(self, pattern: str) -> list[str]:
        return [line for line in self.lines if re.search(pattern, line)]

    async def wait_for(self, pattern: str, count: int = 1, timeout: float = 5.0) -> list[str]:
        await eventually(
            lambda: len(self.matching(pattern)) >= count, timeout, f"log line /{pattern}/"
        )
        return self.matching(pattern)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


class Poise:
    def __init__(self, text: str, siblings: Siblings | None = None) -> None:
        # A test's configuration is a string, not a file that may have been truncated.
        text = text if text.endswith("\n") else text + "\n"
        config, diagnostics = parse([("test.cfg", text)], {})
        errors = [str(d) for d in diagnostics if d.severity.value == "error"]
        assert config is not None and not errors, errors
        self.config = config
        self.runtime = Runtime(config, {})
        if siblings is not None:  # one of several workers (tests/pairbus.py)
            self.runtime.siblings = siblings
        self.task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Poise:
        self.runtime.bind()
        ready = asyncio.Event()
        self.task = asyncio.get_running_loop().create_task(self.runtime.serve(ready.set))
        await asyncio.wait_for(ready.wait(), 5)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.runtime.stopped is not None and not self.runtime.stopped.is_set():
            self.runtime.stop_now()
        if self.task is not None:
            await self.task
        self.runtime.close()
        # Let aborted transports report connection_lost before the loop closes.
        await asyncio.sleep(0.01)

    def port(self, frontend: str, index: int = 0) -> int:
        listeners = [lst for lst in self.runtime.listeners if lst.frontend == frontend]
        port: int = listeners[index].sock.getsockname()[1]
        return port

    @property
    def ctx(self):  # type: ignore[no-untyped-def]
        assert self.runtime.ctx is not None
        return self.runtime.ctx


class Stage:
    """One test's world: real backends, a syslog receiver and poise, all stopped at the
    end however the test ends. Configuration text may use `{log}` for the receiver's port.

        async with Stage() as stage:
            a = await stage.backend("a")
            poise = await stage.poise(TEXT.format(a=a.port, log="{log}"))
    """

    def __init__(self) -> None:
        self.logs = LogReceiver()
        self.backends: list[Backend] = []
        self.webapps: list[WebApp] = []
        self.balancers: list[Poise] = []

    async def __aenter__(self) -> Stage:
        await self.logs.start()
        return self

    async def backend(
        self, name: str, greet: bool = True, host: str = "127.0.0.1", port: int = 0
    ) -> Backend:
        backend = await Backend(name, greet).start(host, port)
        self.backends.append(backend)
        return backend

    async def webapp(
        self, name: str, host: str = "127.0.0.1", port: int = 0, tls: ssl.SSLContext | None = None
    ) -> WebApp:
        """A real HTTP/1.1 backend (tests/webapp.py), over TLS with `tls`."""
        app = await WebApp(name, host=host).start(port, tls)
        self.webapps.append(app)
        return app

    async def poise(self, text: str, siblings: Siblings | None = None) -> Poise:
        poise = Poise(text.replace("{log}", str(self.logs.port)), siblings)
        await poise.__aenter__()
        self.balancers.append(poise)
        return poise

    async def __aexit__(self, *exc: object) -> None:
        for poise in self.balancers:
            await poise.__aexit__(None, None, None)
        for backend in self.backends:
            await backend.stop()
        for app in self.webapps:
            await app.stop()
        self.logs.close()
