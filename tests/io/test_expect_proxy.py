"""`tcp-request connection expect-proxy layer4 if COND` side by side with HAProxy 2.6: the
PROXY header is read only from the clients the condition names (here 127.0.0.2, a
trusted load balancer), whose header's address is then the client's; others are read as
they are, and a header from them is no request (400). Real sockets on 127.0.0.0/8; the
addresses inside the header are a documentation range that carries no traffic."""

from __future__ import annotations

from pathlib import Path

from tests.io.harness import Stage
from tests.io.test_accept_proxy import GET, V1, exchange
from tests.io.test_server_options import haproxy, needs_haproxy
from tests.support import free_port, run

CONFIG = """
defaults
    mode http
    timeout connect 1s
    timeout client 5s
    timeout server 5s
frontend fe
    bind 127.0.0.1:{port}
    tcp-request connection expect-proxy layer4 if {{ src 127.0.0.2 }}
    option forwardfor
    default_backend be
backend be
    server a 127.0.0.1:{app}
"""
CASES = [("127.0.0.2", V1 + GET), ("127.0.0.1", GET), ("127.0.0.1", V1 + GET)]


@needs_haproxy
def test_the_header_is_read_from_the_clients_the_rule_names_as_haproxy(
    loop_kind: str, tmp_path: Path
) -> None:
    async def main() -> None:
        async with Stage() as stage:
            app = await stage.webapp("a")

            async def observe(port: int) -> list[tuple[bytes, str | None]]:
                seen = []
                for source, data in CASES:
                    app.seen.clear()
                    answer = await exchange(port, data, source)
                    forwarded = app.seen[0].header("X-Forwarded-For") if app.seen else None
                    seen.append((answer.split(b"\r\n", 1)[0], forwarded))
                return seen

            poise = await stage.poise(CONFIG.format(port=0, app=app.port))
            ours = await observe(poise.port("fe"))
            port = free_port()
            async with haproxy(CONFIG.format(port=port, app=app.port), tmp_path, port):
                theirs = await observe(port)
            assert (
                ours
                == theirs
                == [
                    (b"HTTP/1.1 200 OK", "198.51.100.7"),
                    (b"HTTP/1.1 200 OK", "127.0.0.1"),
                    (b"HTTP/1.1 400 Bad request", None),
                ]
            )

    run(loop_kind, main)
