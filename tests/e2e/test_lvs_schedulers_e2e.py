"""IPVS's own schedulers through `poise vrrp` as a process, with real clients and real
servers on 127.0.0.0/8: `lb_algo dh` (each address of a virtual_server_group to the real
server it hashes to, dealt again when one is removed), `fo` (the highest weight takes
everything until its checker removes it) and `ovf` (the highest weight up to its weight in
open connections, then the next, then none)."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import socket
import sys
from collections import Counter
from pathlib import Path

import pytest

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
