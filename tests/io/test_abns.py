"""`abns@NAME` (Linux abstract unix sockets) on `bind`, `server` and `stats socket`: a
frontend chained to another over abns@ with the PROXY protocol (HAProxy's common use), the
same configuration accepted by `haproxy -c`, and a real HAProxy 2.6 reaching poise's abstract
socket (both pad the name to the whole sun_path). Names carry a random token: the abstract
namespace is shared by every process of the network namespace."""

from __future__ import annotations

import asyncio
import secrets
import shutil
import socket
import subprocess
from pathlib import Path

import pytest

from poise.config.haproxy import parse
from tests.io.harness import Stage
from tests.io.test_admin import start_admin
from tests.support import run
from tests.tlskit import Pki

needs_haproxy = pytest.mark.skipif(
    shutil.which("haproxy") is None, reason="needs Debian's haproxy (make debs)"
)


def chained(name: str, backend_port: int, log: str, front: int = 0) -> str:
    """`front` hands its clients to `inner` over abns@NAME, with a PROXY v2 header."""
    return f"""global
    stats socket abns@{name}-stats level admin
defaults
    mode tcp
    log 127.0.0.1:{log} format raw local0
    timeout connect 1s
    timeout client 5s
    timeout server 5s
frontend front
    bind 127.0.0.1:{front}
    default_backend over_abns
backend over_abns
    server s abns@{name} send-proxy-v2
frontend inner
    bind abns@{name} accept-proxy
    log-format "inner saw %ci:%cp %b/%s"
    default_backend app
backend app
    server a 127.0.0.1:{backend_port}
"""


def padded(name: str) -> bytes:
    return (b"\0" + name.encode()).ljust(108, b"\0")


async def greeting(port: int, source: str) -> tuple[str, int]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))
    try:
        line = await asyncio.wait_for(reader.readline(), 5)
        return line.decode().strip(), writer.get_extra_info("sockname")[1]
    finally:
        writer.close()


def exchange(address: bytes, command: bytes) -> bytes:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(5)
        sock.connect(address)
        sock.sendall(command)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
        return answer


def test_frontend_chained_over_abns(loop_kind: str) -> None:
    name = f"poise-test-{secrets.token_hex(6)}"

    async def main() -> None:
        async with Stage() as stage:
            app = await stage.backend("a")
            poise = await stage.poise(chained(name, app.port, "{log}"))
            answer, port = await greeting(poise.port("front"), "127.0.0.9")
            assert answer == "a"
            # The inner frontend saw the client's own address (the PROXY header's).
            await stage.logs.wait_for(rf"inner saw 127\.0\.0\.9:{port} app/a$")
            # The listener is the abstract name padded to the whole sun_path, as HAProxy's.
            with Path("/proc/net/unix").open("rb") as table:
                assert f"@{name}".encode() + b"@" * (107 - len(name)) in table.read()

    run(loop_kind, main)


def test_stats_socket_on_abns(loop_kind: str) -> None:
    name = f"poise-test-{secrets.token_hex(6)}"
    config, diagnostics = parse([("test.cfg", chained(name, 1, "514"))], {})
    assert config is not None and not diagnostics, diagnostics

    async def main() -> None:
        admin = await start_admin(list(config.global_.stats_sockets))
        try:
            assert list(admin.names) == [padded(f"{name}-stats")]  # type: ignore[comparison-overlap]
            loop = asyncio.get_running_loop()
            info = await loop.run_in_executor(
                None, exchange, padded(f"{name}-stats"), b"show info\n"
            )
            assert info.startswith(b"Name: poise\n"), info
        finally:
            admin.close()

    run(loop_kind, main)


@needs_haproxy
def test_haproxy_accepts_the_same_configuration(tmp_path: Path) -> None:
    cfg = tmp_path / "haproxy.cfg"
    cfg.write_text(chained("poise-test-check", 8080, "514", front=8080))
    done = subprocess.run(
        ["haproxy", "-c", "-f", str(cfg)], check=False, capture_output=True, timeout=30
    )
    assert done.returncode == 0, done.stderr


@needs_haproxy
def test_haproxy_reaches_poises_abstract_socket(loop_kind: str, tmp_path: Path) -> None:
    """haproxy's `server abns@NAME send-proxy-v2` to poise's `bind abns@NAME accept-proxy`:
    the two agree on the padded name, and poise reads haproxy's header."""
    name = f"poise-test-{secrets.token_hex(6)}"

    async def main() -> None:
        async with Stage() as stage:
            app = await stage.backend("a")
            with socket.socket() as probe:
                probe.bind(("127.0.0.1", 0))
                hap = probe.getsockname()[1]
            cfg = tmp_path / "haproxy.cfg"
            cfg.write_text(
                f"""defaults
    mode tcp
    timeout connect 1s
    timeout client 5s
    timeout server 5s
listen front
    bind 127.0.0.1:{hap}
    server poise abns@{name} send-proxy-v2
"""
            )
            await stage.poise(
                f"""defaults
    mode tcp
    log 127.0.0.1:{{log}} format raw local0
    timeout connect 1s
    timeout client 5s
    timeout server 5s
listen inner
    bind abns@{name} accept-proxy
    log-format "inner saw %ci:%cp"
    server a 127.0.0.1:{app.port}
"""
            )
            haproxy = subprocess.Popen(
                ["haproxy", "-db", "-f", str(cfg)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            try:
                deadline = asyncio.get_running_loop().time() + 10
                while True:
                    try:
                        answer, port = await greeting(hap, "127.0.0.9")
                        break
                    except OSError:
                        if asyncio.get_running_loop().time() > deadline:
                            raise
                        await asyncio.sleep(0.05)
                assert answer == "a"
                await stage.logs.wait_for(rf"inner saw 127\.0\.0\.9:{port}$")
            finally:
                haproxy.terminate()
                haproxy.wait(10)

    run(loop_kind, main)


def test_tls_over_abns_with_the_proxy_header_first(loop_kind: str, tmp_path: Path) -> None:
    """`server abns@x ssl send-proxy-v2` to `bind abns@x accept-proxy ssl` (HTTP): the header
    goes before the handshake, as on TCP, and the inner frontend logs the client's address
    and the TLS version it terminated."""
    name = f"poise-test-{secrets.token_hex(6)}"
    pki = Pki(tmp_path)
    crt = pki.issue("inner.pem", dns=["inner.example"])

    async def main() -> None:
        async with Stage() as stage:
            app = await stage.webapp("a")
            text = (
                chained(name, app.port, "{log}")
                .replace("mode tcp", "mode http")
                .replace(
                    " send-proxy-v2",
                    f" send-proxy-v2 ssl ca-file {pki.ca_pem} sni str(inner.example)",
                )
                .replace(" accept-proxy", f" accept-proxy ssl crt {crt}")
                .replace("%b/%s", "%b/%s %ST %sslv")
            )
            poise = await stage.poise(text)
            reader, writer = await asyncio.open_connection(
                "127.0.0.1", poise.port("front"), local_addr=("127.0.0.9", 0)
            )
            port = writer.get_extra_info("sockname")[1]
            writer.write(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
            answer = await asyncio.wait_for(reader.read(), 5)
            writer.close()
            assert answer.startswith(b"HTTP/1.1 200"), answer
            await stage.logs.wait_for(rf"inner saw 127\.0\.0\.9:{port} app/a 200 TLSv1\.3$")

    run(loop_kind, main)
