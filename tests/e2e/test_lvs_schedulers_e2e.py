"""IPVS's own schedulers through `poise vrrp` as a process, with real clients and real
servers on 127.0.0.0/8: `lb_algo dh` (each address of a virtual_server_group to the real
server it hashes to, dealt again when one is removed), `fo` (the highest weight takes
everything until its checker removes it) and `ovf` (the highest weight up to its weight in
open connections, then the next, then none); and poise's own `send_proxy` /
`send_proxy_v2`, a PROXY header naming the client read by the real servers."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import socket
import sys
from collections import Counter
from pathlib import Path

import pytest

from poise.core import proxyproto
from tests.e2e.test_lvs_e2e import UdpRealServer
from tests.support import Backend, ask_name, eventually, free_port, run

pytestmark = [pytest.mark.e2e]
POISE = str(Path(sys.executable).parent / "poise")

CONF = """
virtual_server_group dh {{
    127.0.0.1 {dh}
    127.0.0.2 {dh}
}}
virtual_server group dh {{
{common}    lb_algo dh
{dh_reals}}}
virtual_server 127.0.0.1 {fo} {{
{common}    lb_algo fo
{fo_reals}}}
virtual_server 127.0.0.1 {ovf} {{
{common}    lb_algo ovf
{ovf_reals}}}
"""
COMMON = "    delay_loop 0.1\n    warmup 0\n    lb_kind NAT\n    protocol TCP\n"
REAL = """    real_server 127.0.0.1 {port} {{
        weight {weight}
        TCP_CHECK {{
            connect_timeout 0.5
            retry 0
        }}
    }}
"""


def reals(backends: list[Backend], weights: list[int]) -> str:
    return "".join(
        REAL.format(port=b.port, weight=w) for b, w in zip(backends, weights, strict=True)
    )


async def hold(port: int) -> tuple[str, asyncio.StreamWriter]:
    """A connection kept open: the name of the real server that greeted it ('' if none)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    line = await asyncio.wait_for(reader.readline(), 5)
    return line.decode().strip(), writer


def test_dh_fo_and_ovf_choose_as_ipvs(tmp_path: Path, loop_kind: str) -> None:
    log = tmp_path / "vrrp.log"

    async def main() -> None:
        dh = [await Backend(f"d{i}").start() for i in (1, 2, 3)]
        fo = [await Backend(f"f{i}").start() for i in (1, 2, 3)]
        ovf = [await Backend(f"o{i}").start() for i in (1, 2)]
        ports = {"dh": free_port(), "fo": free_port(), "ovf": free_port()}
        conf = tmp_path / "keepalived.conf"
        conf.write_text(
            CONF.format(
                common=COMMON,
                dh_reals=reals(dh, [1, 1, 1]),
                fo_reals=reals(fo, [1, 3, 2]),
                ovf_reals=reals(ovf, [1, 2]),
                **ports,
            )
        )
        with log.open("wb") as stream:
            proc = await asyncio.create_subprocess_exec(
                POISE, "vrrp", "-f", str(conf), "-db", stdout=stream, stderr=stream
            )
        held: list[asyncio.StreamWriter] = []
        try:
            await eventually(lambda: log.read_text().count("Activating healthchecker") == 8, 10)

            async def names(host: str, port: int, count: int = 6) -> Counter[str]:
                return Counter([await ask_name(port, host) for _ in range(count)])

            # dh: 127.0.0.1 is bucket 177 (1 * 2654435761 mod 256), 177 mod 3 = 0: d1;
            # 127.0.0.2 is bucket 98, 98 mod 3 = 2: d3; whoever the client is
            assert await names("127.0.0.1", ports["dh"]) == Counter({"d1": 6})
            assert await names("127.0.0.2", ports["dh"]) == Counter({"d3": 6})
            # fo: the highest weight takes everything
            assert await names("127.0.0.1", ports["fo"]) == Counter({"f2": 6})
            # ovf: o2 (weight 2) while it has no more than 2 open, o1 (weight 1) likewise
            for _ in range(5):
                name, writer = await hold(ports["ovf"])
                held.append(writer)
                assert name  # every one served
            assert (ovf[1].open, ovf[0].open) == (3, 2)
            name, writer = await hold(ports["ovf"])
            held.append(writer)
            assert name == ""  # none left: closed unanswered
            held.pop().close()
            held.pop().close()  # one of o1's goes: o1 takes the next
            await eventually(lambda: ovf[0].open == 1, 5, "o1's connection to close")
            name, writer = await hold(ports["ovf"])
            held.append(writer)
            assert name == "o1"

            # d1 and f2 die: their checkers remove them
            await dh[0].stop()
            await fo[1].stop()
            await eventually(lambda: log.read_text().count("Removing service") == 2, 10)
            # dh deals its buckets over d2, d3: 177 mod 2 = 1: d3; 98 mod 2 = 0: d2
            assert await names("127.0.0.1", ports["dh"]) == Counter({"d3": 6})
            assert await names("127.0.0.2", ports["dh"]) == Counter({"d2": 6})
            # fo: the next highest weight
            assert await names("127.0.0.1", ports["fo"]) == Counter({"f3": 6})
        finally:
            for writer in held:
                writer.close()
            if proc.returncode is None:
                proc.terminate()
                await asyncio.wait_for(proc.wait(), 10)
            for backend in [*dh, *fo, *ovf]:
                await backend.stop()

    run(loop_kind, main, timeout=60)


UDP_CONF = """
virtual_server_group dh {{
    127.0.0.1 {port}
    127.0.0.2 {port}
}}
virtual_server group dh {{
    lb_algo dh
    protocol UDP
{reals}}}
"""


def test_dh_over_udp_sends_each_address_s_datagrams_to_its_real_server(
    tmp_path: Path, loop_kind: str
) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        servers = [
            await loop.create_datagram_endpoint(
                functools.partial(UdpRealServer, name), local_addr=("127.0.0.1", 0)
            )
            for name in ("a", "b", "c")
        ]
        ports = [t.get_extra_info("sockname")[1] for t, _ in servers]
        port = free_port()
        reals = "".join(f"    real_server 127.0.0.1 {p} {{\n    }}\n" for p in ports)
        conf = tmp_path / "keepalived.conf"
        conf.write_text(UDP_CONF.format(port=port, reals=reals))
        log = tmp_path / "vrrp.log"
        with log.open("wb") as stream:
            proc = await asyncio.create_subprocess_exec(
                POISE, "vrrp", "-f", str(conf), "-db", stdout=stream, stderr=stream
            )

        async def answer(host: str) -> bytes:
            """A new client's first answer (retried until poise vrrp runs its loop)."""
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
                sock.setblocking(False)
                sock.connect((host, port))
                for _ in range(40):
                    await loop.sock_sendall(sock, b"hi")
                    with contextlib.suppress(TimeoutError):
                        return await asyncio.wait_for(loop.sock_recv(sock, 2048), 0.25)
            raise AssertionError(f"no answer through {host}:{port}")

        try:
            await eventually(lambda: "Starting VRRP child process" in log.read_text(), 10)
            # 127.0.0.1: bucket 177, 177 mod 3 = 0: a; 127.0.0.2: bucket 98, 98 mod 3 = 2: c
            assert {await answer("127.0.0.1") for _ in range(4)} == {b"a hi"}
            assert {await answer("127.0.0.2") for _ in range(4)} == {b"c hi"}
        finally:
            proc.terminate()
            await asyncio.wait_for(proc.wait(), 10)
            for transport, _ in servers:
                transport.close()

    run(loop_kind, main, timeout=60)


PROXY_CONF = """
virtual_server 127.0.0.1 {port} {{
    lb_algo rr
    lb_kind NAT
    protocol TCP
    send_proxy_v2
    real_server 127.0.0.1 {v1} {{
        send_proxy_v2 off
        send_proxy
    }}
    real_server 127.0.0.1 {v2} {{
    }}
    real_server 127.0.0.1 {plain} {{
        send_proxy_v2 off
    }}
}}
"""


class ProxyReader:
    """A real server that reads a PROXY header first and answers with what it said."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.server: asyncio.AbstractServer | None = None
        self.port = 0

    async def start(self) -> ProxyReader:
        self.server = await asyncio.start_server(self.handle, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        data = b""
        parsed = None
        while parsed is None:
            chunk = await reader.read(4096)
            data += chunk
            parsed = proxyproto.parse(data)
            if not chunk:
                break
        if isinstance(parsed, tuple):
            header, _ = parsed
            said = f"{self.name} v{header.version} {header.src} {header.dst}"
        else:
            said = f"{self.name} no header: {data[:20]!r}"
        writer.write(said.encode() + b"\n")
        await writer.drain()
        writer.close()

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()


def test_send_proxy_tells_the_real_servers_the_client_s_address(
    tmp_path: Path, loop_kind: str
) -> None:
    log = tmp_path / "vrrp.log"

    async def main() -> None:
        v1, v2 = await ProxyReader("one").start(), await ProxyReader("two").start()
        plain = await Backend("three").start()
        port = free_port()
        conf = tmp_path / "keepalived.conf"
        conf.write_text(PROXY_CONF.format(port=port, v1=v1.port, v2=v2.port, plain=plain.port))
        with log.open("wb") as stream:
            proc = await asyncio.create_subprocess_exec(
                POISE, "vrrp", "-f", str(conf), "-db", stdout=stream, stderr=stream
            )
        try:
            await eventually(lambda: "Starting VRRP child process" in log.read_text(), 10)
            said = []
            for _ in range(3):
                for _ in range(50):  # until poise vrrp accepts
                    try:
                        reader, writer = await asyncio.open_connection("127.0.0.1", port)
                        break
                    except OSError:
                        await asyncio.sleep(0.05)
                client = writer.get_extra_info("sockname")
                line = (await asyncio.wait_for(reader.readline(), 5)).decode().strip()
                writer.close()
                said.append(line.replace(str(client[1]), "CPORT"))
            client_ip, vs = "127.0.0.1", f"('127.0.0.1', {port})"
            # rr: one, two, three; the first two told the client and the address it reached
            assert said == [
                f"one v1 ('{client_ip}', CPORT) {vs}",
                f"two v2 ('{client_ip}', CPORT) {vs}",
                "three",
            ], said
        finally:
            proc.terminate()
            await asyncio.wait_for(proc.wait(), 10)
            for server in (v1, v2, plain):
                await server.stop()

    run(loop_kind, main, timeout=60)
