"""The HTTP rule language through real sockets (issue 14): variables, converters and maps
deciding where a request goes and what the backend and the client see."""

from __future__ import annotations

from tests.io.harness import Stage
from tests.support import run
from tests.webapp import Client

BASE = """
defaults
    mode http
    timeout connect 1s
    timeout client 2s
    timeout server 2s
"""


def test_variables_carry_values_from_the_request_to_routing_and_the_response(
    loop_kind: str,
) -> None:
    async def main() -> None:
        async with Stage() as stage:
            api = await stage.webapp("api")
            web = await stage.webapp("web")
            poise = await stage.poise(
                BASE + "frontend fe\n    bind 127.0.0.1:0\n"
                "    http-request set-var(txn.tenant) req.hdr(x-tenant),lower\n"
                "    http-request set-var-fmt(txn.origin) %[src]:%[path]\n"
                "    http-request set-header X-Tenant %[var(txn.tenant,none)]\n"
                "    http-response set-header X-Origin %[var(txn.origin)]\n"
                "    http-response set-var(res.code) status\n"
                "    http-response set-header X-Code %[var(res.code)]\n"
                "    use_backend api if { var(txn.tenant) -m str acme }\n"
                "    default_backend web\n"
                f"backend api\n    server api 127.0.0.1:{api.port}\n"
                f"backend web\n    server web 127.0.0.1:{web.port}\n"
            )
            client = await Client.connect(poise.port("fe"))
            status, headers, body = await client.get("/a", "X-Tenant: ACME\r\n")
            assert (status, body) == (200, b"api /a")
            assert headers["x-origin"] == "127.0.0.1:/a" and headers["x-code"] == "200"
            assert api.seen[-1].header("X-Tenant") == "acme"
            # The next request on the same connection is a new transaction: no tenant.
            status, headers, body = await client.get("/b")
            assert (status, body) == (200, b"web /b")
            assert web.seen[-1].header("X-Tenant") == "none"
            assert headers["x-origin"] == "127.0.0.1:/b"
            client.close()

    run(loop_kind, main)


def test_converters_shape_headers_and_routing(loop_kind: str) -> None:
    async def main() -> None:
        async with Stage() as stage:
            eu = await stage.webapp("eu")
            other = await stage.webapp("other")
            poise = await stage.poise(
                BASE + "frontend fe\n    bind 127.0.0.1:0\n"
                "    http-request set-var(txn.region) req.hdr(x-node),field(2,.),lower\n"
                "    http-request set-header X-Path %[path,regsub(/+,/,g)]\n"
                "    http-request set-header X-Sum %[req.hdr(x-n),add(40),mul(2)]\n"
                "    http-request set-header X-Tag %[str(t),concat(<,txn.region,>),base64]\n"
                "    http-request set-header X-Hash %[req.hdr(x-node),crc32]\n"
                "    use_backend eu if { var(txn.region) -m str eu }\n"
                "    default_backend other\n"
                f"backend eu\n    server eu 127.0.0.1:{eu.port}\n"
                f"backend other\n    server other 127.0.0.1:{other.port}\n"
            )
            client = await Client.connect(poise.port("fe"))
            status, _, body = await client.get("//a///b", "X-Node: web1.EU.example\r\nX-N: 1\r\n")
            assert (status, body) == (200, b"eu //a///b")
            seen = eu.seen[-1]
            assert seen.header("X-Path") == "/a/b" and seen.header("X-Sum") == "82"
            assert seen.header("X-Tag") == "dDxldT4="  # base64 of "t<eu>"
            assert seen.header("X-Hash") == "672365282"  # crc32 of "web1.EU.example"
            status, _, body = await client.get("/c", "X-Node: web2.us.example\r\n")
            assert (status, body) == (200, b"other /c")
            assert other.seen[-1].header("X-Sum") == ""  # no X-N header: no value
            client.close()

    run(loop_kind, main)
