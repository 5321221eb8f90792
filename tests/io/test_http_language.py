"""The HTTP rule language through real sockets (issue 14): variables, converters and maps
deciding where a request goes and what the backend and the client see."""

from __future__ import annotations

import os
import time

from poise.core.server import AdminState
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


def test_session_variables_last_for_the_whole_client_connection(loop_kind: str) -> None:
    """HAProxy keeps `sess` variables for the client connection: set on request 1, read on
    request 2 of the same connection, absent on another connection."""

    async def main() -> None:
        async with Stage() as stage:
            web = await stage.webapp("web")
            poise = await stage.poise(
                BASE + "frontend fe\n    bind 127.0.0.1:0\n"
                "    http-request set-var(sess.user) req.hdr(x-user)"
                " if { req.hdr(x-user) -m found }\n"
                "    http-request set-header X-User %[var(sess.user,none)]\n"
                "    default_backend web\n"
                f"backend web\n    server web 127.0.0.1:{web.port}\n"
            )
            client = await Client.connect(poise.port("fe"))
            status, _, _ = await client.get("/1", "X-User: alice\r\n")
            assert status == 200 and web.seen[-1].header("X-User") == "alice"
            status, _, _ = await client.get("/2")
            assert status == 200 and web.seen[-1].header("X-User") == "alice"
            other = await Client.connect(poise.port("fe"))
            status, _, _ = await other.get("/3")
            assert status == 200 and web.seen[-1].header("X-User") == "none"
            client.close()
            other.close()

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


def test_backend_state_and_process_fetches_route_and_fill_headers(loop_kind: str) -> None:
    async def main() -> None:
        async with Stage() as stage:
            spare = await stage.webapp("spare")
            main_app = await stage.webapp("main")
            poise = await stage.poise(
                BASE + "frontend fe\n    bind 127.0.0.1:0\n"
                "    http-request set-header X-Slots %[connslots(main)]\n"
                "    http-request set-header X-Up %[srv_is_up(main/m1)]\n"
                "    http-request set-header X-Env %[env(POISE_TEST_ENV)]\n"
                "    http-request set-header X-Date %[date]\n"
                "    use_backend spare if { nbsrv(main) lt 1 }\n"
                "    default_backend main\n"
                f"backend main\n    server m1 127.0.0.1:{main_app.port} maxconn 5 maxqueue 2\n"
                f"backend spare\n    server s1 127.0.0.1:{spare.port}\n"
            )
            os.environ["POISE_TEST_ENV"] = "here"
            try:
                client = await Client.connect(poise.port("fe"))
                before = int(time.time())
                status, _, body = await client.get("/a")
                assert (status, body) == (200, b"main /a")
                seen = main_app.seen[-1]
                assert seen.header("X-Up") == "1" and seen.header("X-Env") == "here"
                # Counted while this very request is being routed: none connected yet.
                assert seen.header("X-Slots") == "7"
                assert before <= int(seen.header("X-Date") or 0) <= int(time.time())
                poise.ctx.backends["main"].server("m1").admin = AdminState.MAINT
                status, _, body = await client.get("/b")
                assert (status, body) == (200, b"spare /b")
                assert spare.seen[-1].header("X-Up") == "0"
                assert spare.seen[-1].header("X-Slots") == "0"
                client.close()
            finally:
                del os.environ["POISE_TEST_ENV"]

    run(loop_kind, main)


def test_basic_authentication_against_a_userlist(loop_kind: str) -> None:
    async def main() -> None:
        async with Stage() as stage:
            app = await stage.webapp("app")
            poise = await stage.poise(
                BASE + "userlist admins\n    group ops users ann\n"
                "    user ann insecure-password s3cret\n"
                "    user bob password $1$abcdefgh$IQtUouv7y7Q9dRWkQEPCc.\n"  # MD5-crypt: "pw"
                "frontend fe\n    bind 127.0.0.1:0\n"
                "    acl ok http_auth(admins)\n"
                "    acl ops http_auth_group(admins) ops\n"
                "    http-request auth realm Admin if !ok\n"
                "    http-request deny if { path_beg /ops } !ops\n"
                "    http-request set-header X-User %[http_auth_group(admins)]\n"
                f"    default_backend be\nbackend be\n    server a 127.0.0.1:{app.port}\n"
            )
            client = await Client.connect(poise.port("fe"))
            status, headers, _ = await client.get("/x")
            assert status == 401 and headers["www-authenticate"] == 'Basic realm="Admin"'
            # The 401 keeps the connection open, as HAProxy's does.
            ann = "Authorization: Basic YW5uOnMzY3JldA==\r\n"  # ann:s3cret
            status, _, body = await client.get("/x", ann)
            assert (status, body) == (200, b"app /x") and app.seen[-1].header("X-User") == "ann"
            bob = "Authorization: Basic Ym9iOnB3\r\n"  # bob:pw
            assert (await client.get("/y", bob))[0] == 200
            assert app.seen[-1].header("X-User") == "bob"
            assert (await client.get("/ops/z", bob))[0] == 403  # not in group ops
            assert (await client.get("/ops/z", "Authorization: Basic YW5uOnMzY3JldA==\r\n"))[
                0
            ] == 200
            assert (await client.get("/y", "Authorization: Basic Ym9iOnB4\r\n"))[0] == 401
            client.close()

    run(loop_kind, main)


def test_rewritten_request_lines_reach_the_server(loop_kind: str) -> None:
    async def main() -> None:
        async with Stage() as stage:
            app = await stage.webapp("app")
            poise = await stage.poise(
                BASE + "frontend fe\n    bind 127.0.0.1:0\n"
                "    http-request replace-path /api/(.*) /\\1 if { path_beg /api/ }\n"
                "    http-request set-query %[query,regsub(%3D,=,g)]\n"
                "    http-request set-path /v2%[path] if { req.hdr(x-v2) -m found }\n"
                f"    default_backend be\nbackend be\n    server a 127.0.0.1:{app.port}\n"
            )
            client = await Client.connect(poise.port("fe"))
            assert (await client.get("/api/users?a%3Db"))[2] == b"app /users?a=b"
            assert (await client.get("/x", "X-V2: 1\r\n"))[2] == b"app /v2/x"
            assert (await client.get("/plain"))[2] == b"app /plain"
            assert [s.target for s in app.seen] == ["/users?a=b", "/v2/x", "/plain"]
            client.close()

    run(loop_kind, main)
