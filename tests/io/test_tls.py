"""TLS through the running proxy, with real handshakes on 127.0.0.1 and certificates made
by poise's own CA: the certificate chosen by SNI (exact, wildcard, default, strict-sni), a
verifying client refusing a name mismatch, client certificates, the TLS profile, `redirect
scheme https unless { ssl_fc }`, TLS offload in front of `mode tcp`, re-encryption to TLS
servers (a server whose certificate has the wrong name or an unknown CA is never used, and
the log says why), checks over TLS, an SNI taken from the request, and a reload that keeps
the working certificate when the new one is broken."""

from __future__ import annotations

import asyncio
import datetime as dt
import ssl
from pathlib import Path

import pytest

from poise.net import openssl
from poise.net.tls_context import TlsError
from tests.io.harness import Stage
from tests.support import eventually, run
from tests.tlskit import NOW, Pki, peer_names, tls_open, unverified
from tests.webapp import Client

HEAD = """
global
    log 127.0.0.1:{log} format raw local0
defaults
    mode http
    log global
    option httplog
    timeout connect 1s
    timeout client 2s
    timeout server 2s
"""
ECHO_SNI = (
    '    http-request return status 200 content-type text/plain lf-string "sni=%[ssl_fc_sni] '
    'tls=%[ssl_fc] used=%[ssl_c_used] verify=%[ssl_c_verify]"\n'
)
DAY = dt.timedelta(days=1)
KEY_START = b"-----BEGIN PRIVATE KEY"
HANDSHAKE_FAILED = (ssl.SSLError, ConnectionError, asyncio.IncompleteReadError, OSError)


async def body_of(port: int, context: ssl.SSLContext, sni: str | None, path: str = "/") -> bytes:
    reader, writer = await tls_open(port, context, sni)
    client = Client(reader, writer)
    try:
        status, _, body = await client.get(path)
        assert status == 200, (status, body)
        return body
    finally:
        client.close()


async def presented(port: int, sni: str | None) -> list[str]:
    """The names of the certificate poise presents for this SNI."""
    _, writer = await tls_open(port, unverified(), sni)
    try:
        return peer_names(writer)
    finally:
        writer.close()


async def refused(port: int, context: ssl.SSLContext, sni: str | None) -> BaseException:
    """The handshake (or the first read after it) fails."""
    try:
        reader, writer = await tls_open(port, context, sni)
    except HANDSHAKE_FAILED as exc:
        return exc
    try:
        writer.write(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        data = await asyncio.wait_for(reader.read(100), 5)
        if data:
            raise AssertionError(f"not refused: {data!r}")
        return ConnectionResetError("closed without an answer")
    except HANDSHAKE_FAILED as exc:
        return exc
    finally:
        writer.close()


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return Pki(tmp_path)


def test_sni_picks_the_certificate_exact_wildcard_then_default(loop_kind: str, pki: Pki) -> None:
    first = pki.issue("a.pem", ["a.test"])
    second = pki.issue("b.pem", ["b.test", "www.b.test"])
    wild = pki.issue("wild.pem", ["*.w.test"])

    async def main() -> None:
        async with Stage() as stage:
            poise = await stage.poise(
                HEAD
                + f"frontend fe\n    bind 127.0.0.1:0 ssl crt {first} crt {second} crt {wild}\n"
                + ECHO_SNI
            )
            port = poise.port("fe")
            assert await presented(port, "b.test") == ["b.test", "www.b.test"]
            assert await presented(port, "WWW.B.TEST") == ["b.test", "www.b.test"]
            assert await presented(port, "x.w.test") == ["*.w.test"]
            # A wildcard stands for one label only: the default (first) certificate.
            assert await presented(port, "a.b.w.test") == ["a.test"]
            assert await presented(port, "unknown.test") == ["a.test"]
            assert await presented(port, None) == ["a.test"]
            body = await body_of(port, pki.client(), "x.w.test")
            assert body == b"sni=x.w.test tls=1 used=0 verify=0"

    run(loop_kind, main)


def test_crt_lists_and_crt_directories(loop_kind: str, pki: Pki) -> None:
    fallback = pki.issue("fallback.pem", ["fallback.test"])
    wild = pki.issue("wild.pem", ["*.domain.tld"])
    secure = pki.issue("secure.pem", ["secure.domain.tld"], key_beside=True)
    listing = pki.dir / "list.txt"
    listing.write_text(
        f"# HAProxy's example\n{fallback} !*\n{wild} *.domain.tld !secure.domain.tld\n"
        f"{secure} [alpn h2,http/1.1] secure.domain.tld\n"
    )
    directory = pki.dir.parent / "certs"
    directory.mkdir()
    for name in ("b.test", "a.test"):
        (directory / f"{name}.pem").write_bytes(pki.issue(f"{name}.pem", [name]).read_bytes())

    async def main() -> None:
        async with Stage() as stage:
            poise = await stage.poise(
                HEAD
                + f"frontend fe\n    bind 127.0.0.1:0 ssl crt-list {listing}\n"
                + f"    bind 127.0.0.1:0 ssl crt {directory}\n"
                + ECHO_SNI
            )
            listed, directed = poise.port("fe", 0), poise.port("fe", 1)
            # `!*`: the first certificate answers no name of its own, only as the default.
            assert await presented(listed, "fallback.test") == ["fallback.test"]
            assert await presented(listed, "www.domain.tld") == ["*.domain.tld"]
            assert await presented(listed, "secure.domain.tld") == ["secure.domain.tld"]
            # The line's ALPN, without h2 in an HTTP frontend.
            context = unverified()
            context.set_alpn_protocols(["h2", "http/1.1"])
            _, writer = await tls_open(listed, context, "secure.domain.tld")
            assert writer.get_extra_info("ssl_object").selected_alpn_protocol() == "http/1.1"
            writer.close()
            assert await presented(listed, None) == ["fallback.test"]
            # A directory's files in name order: a.test first, so the default.
            assert await presented(directed, "b.test") == ["b.test"]
            assert await presented(directed, None) == ["a.test"]

    run(loop_kind, main)


def test_strict_sni_refuses_a_name_without_a_certificate(loop_kind: str, pki: Pki) -> None:
    cert = pki.issue("a.pem", ["a.test"])

    async def main() -> None:
        async with Stage() as stage:
            poise = await stage.poise(
                HEAD + f"frontend fe\n    bind 127.0.0.1:0 ssl crt {cert} strict-sni\n" + ECHO_SNI
            )
            port = poise.port("fe")
            assert await body_of(port, pki.client(), "a.test") == (
                b"sni=a.test tls=1 used=0 verify=0"
            )
            await refused(port, unverified(), "other.test")
            await refused(port, unverified(), None)

    run(loop_kind, main)


def test_a_verifying_client_refuses_a_name_mismatch(loop_kind: str, pki: Pki) -> None:
    cert = pki.issue("lb.pem", ["LoadBalancedAG.yourenvironment.com"])

    async def main() -> None:
        async with Stage() as stage:
            poise = await stage.poise(
                HEAD + f"frontend fe\n    bind 127.0.0.1:0 ssl crt {cert}\n" + ECHO_SNI
            )
            port = poise.port("fe")
            body = await body_of(port, pki.client(), "LoadBalancedAG.yourenvironment.com")
            assert body.startswith(b"sni=LoadBalancedAG.yourenvironment.com ")
            with pytest.raises(ssl.SSLCertVerificationError, match="Hostname mismatch"):
                await tls_open(port, pki.client(), "ag1.yourenvironment.com")
            # A client that does not trust poise's CA refuses the certificate too.
            other = Pki(pki.dir.parent, "other", "Other CA")
            with pytest.raises(ssl.SSLCertVerificationError, match="unable to get local issuer"):
                await tls_open(port, other.client(), "LoadBalancedAG.yourenvironment.com")

    run(loop_kind, main)


def test_client_certificates_required_and_optional(loop_kind: str, pki: Pki) -> None:
    cert = pki.issue("lb.pem", ["lb.test"])
    agent = pki.issue("agent.pem", ["agent1.test"], client=True)
    other = Pki(pki.dir.parent, "other", "Other CA")
    stranger = other.issue("stranger.pem", ["agent2.test"], client=True)

    async def main() -> None:
        async with Stage() as stage:
            poise = await stage.poise(
                HEAD
                + f"frontend required\n    bind 127.0.0.1:0 ssl crt {cert} "
                + f"ca-file {pki.ca_pem} verify required\n"
                + ECHO_SNI
                + f"frontend optional\n    bind 127.0.0.1:0 ssl crt {cert} "
                + f"ca-file {pki.ca_pem} verify optional\n"
                + ECHO_SNI
            )
            required, optional = poise.port("required"), poise.port("optional")
            body = await body_of(required, pki.client(agent), "lb.test")
            assert body == b"sni=lb.test tls=1 used=1 verify=0"
            await refused(required, pki.client(), "lb.test")  # no certificate
            await refused(required, pki.client(stranger), "lb.test")  # another CA's
            assert await body_of(optional, pki.client(), "lb.test") == (
                b"sni=lb.test tls=1 used=0 verify=0"
            )
            assert await body_of(optional, pki.client(agent), "lb.test") == (
                b"sni=lb.test tls=1 used=1 verify=0"
            )
            await refused(optional, pki.client(stranger), "lb.test")

    run(loop_kind, main)


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1_1 is deprecated:DeprecationWarning")
def test_the_default_profile_is_tls12_and_13_with_aead_ciphers_only(
    loop_kind: str, pki: Pki
) -> None:
    cert = pki.issue("lb.pem", ["lb.test"])

    def client(version: ssl.TLSVersion, ciphers: str | None = None) -> ssl.SSLContext:
        context = unverified()
        context.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
        context.maximum_version = version
        if ciphers:
            context.set_ciphers(ciphers + ":@SECLEVEL=0")
        return context

    async def main() -> None:
        async with Stage() as stage:
            poise = await stage.poise(
                HEAD
                + f"frontend fe\n    bind 127.0.0.1:0 ssl crt {cert} alpn http/1.1\n"
                + ECHO_SNI
                + f"frontend tls13\n    bind 127.0.0.1:0 ssl crt {cert} ssl-min-ver TLSv1.3 "
                + "ciphersuites TLS_CHACHA20_POLY1305_SHA256\n"
                + ECHO_SNI
            )
            port = poise.port("fe")
            _, writer = await tls_open(port, client(ssl.TLSVersion.TLSv1_3), "lb.test")
            assert writer.get_extra_info("ssl_object").version() == "TLSv1.3"
            writer.close()
            context = unverified()
            context.set_alpn_protocols(["h2", "http/1.1"])
            _, writer = await tls_open(port, context, "lb.test")
            assert writer.get_extra_info("ssl_object").selected_alpn_protocol() == "http/1.1"
            writer.close()
            aead = client(ssl.TLSVersion.TLSv1_2, "ECDHE-ECDSA-AES128-GCM-SHA256")
            _, writer = await tls_open(port, aead, "lb.test")
            assert writer.get_extra_info("ssl_object").version() == "TLSv1.2"
            writer.close()
            await refused(port, client(ssl.TLSVersion.TLSv1_1), "lb.test")
            await refused(port, client(ssl.TLSVersion.TLSv1_2, "ECDHE-ECDSA-AES128-SHA"), None)
            await refused(port, client(ssl.TLSVersion.TLSv1_2, "ECDHE-ECDSA-AES128-SHA256"), None)
            tls13 = poise.port("tls13")
            await refused(tls13, client(ssl.TLSVersion.TLSv1_2), "lb.test")
            _, writer = await tls_open(tls13, client(ssl.TLSVersion.TLSv1_3), "lb.test")
            cipher = writer.get_extra_info("ssl_object").cipher()
            assert cipher[0] == "TLS_CHACHA20_POLY1305_SHA256"
            writer.close()

    run(loop_kind, main)


def test_plain_http_is_redirected_to_https_unless_ssl_fc(loop_kind: str, pki: Pki) -> None:
    cert = pki.issue("lb.pem", ["lb.test"])

    async def main() -> None:
        async with Stage() as stage:
            app = await stage.webapp("ag1")
            poise = await stage.poise(
                HEAD
                + "frontend agents\n    bind 127.0.0.1:0\n"
                + f"    bind 127.0.0.1:0 ssl crt {cert}\n"
                + "    http-request redirect scheme https code 301 unless { ssl_fc }\n"
                + f"    default_backend gw\nbackend gw\n    server ag1 127.0.0.1:{app.port}\n"
            )
            clear = await Client.connect(poise.port("agents", 0))
            status, headers, _ = await clear.get("/enroll?x=1")
            clear.close()
            assert status == 301
            assert headers["location"] == "https://test/enroll?x=1"
            reader, writer = await tls_open(poise.port("agents", 1), pki.client(), "lb.test")
            client = Client(reader, writer)
            status, _, body = await client.get("/enroll?x=1")
            client.close()
            assert (status, body) == (200, b"ag1 /enroll?x=1")
            assert [seen.target for seen in app.seen] == ["/enroll?x=1"]
            # Both requests are logged: the redirect and the one forwarded.
            await stage.logs.wait_for(r'"GET /enroll\?x=1 HTTP/1.1"', count=2)

    run(loop_kind, main)


def test_tls_offload_in_front_of_tcp_mode(loop_kind: str, pki: Pki) -> None:
    cert = pki.issue("view.pem", ["view.domain.local"])

    async def main() -> None:
        async with Stage() as stage:
            view01 = await stage.backend("view01")
            poise = await stage.poise(
                HEAD.replace("mode http", "mode tcp").replace("option httplog", "option tcplog")
                + f"frontend secured\n    bind 127.0.0.1:0 ssl crt {cert}\n"
                + "    default_backend view\n"
                + f"backend view\n    server view01 127.0.0.1:{view01.port}\n"
            )
            reader, writer = await tls_open(
                poise.port("secured"), pki.client(), "view.domain.local"
            )
            assert await asyncio.wait_for(reader.readline(), 5) == b"view01\n"
            writer.write(b"hello through TLS\n")
            assert await asyncio.wait_for(reader.readline(), 5) == b"hello through TLS\n"
            writer.close()
            # The server received the bytes in clear; the session is logged when it ends.
            await stage.logs.wait_for(r"secured view/view01 ")

    run(loop_kind, main)


def test_re_encryption_to_a_server_with_a_valid_certificate(loop_kind: str, pki: Pki) -> None:
    gateway = pki.issue("ag1.pem", ["ag1.yourenvironment.com"])
    seen: list[str | None] = []

    async def main() -> None:
        async with Stage() as stage:
            app = await stage.webapp("ag1", tls=pki.server(gateway, seen))
            poise = await stage.poise(
                HEAD
                + "frontend fe\n    bind 127.0.0.1:0\n    default_backend gw\n"
                + f"backend gw\n    server ag1 127.0.0.1:{app.port} ssl verify required "
                + f"ca-file {pki.ca_pem} sni str(ag1.yourenvironment.com)\n"
            )
            client = await Client.connect(poise.port("fe"))
            for path in ("/one", "/two"):
                status, _, body = await client.get(path)
                assert (status, body) == (200, f"ag1 {path}".encode())
            client.close()
            # One TLS connection to the gateway, kept alive for both requests, with SNI.
            assert app.connections == 1
            assert seen == ["ag1.yourenvironment.com"]

    run(loop_kind, main)


def test_re_encryption_with_a_client_certificate(loop_kind: str, pki: Pki) -> None:
    gateway = pki.issue("ag1.pem", ["ag1.test"])
    poise_cert = pki.issue("poise-client.pem", ["lb.test"], client=True)

    async def main() -> None:
        tls = pki.server(gateway)
        tls.load_verify_locations(cafile=str(pki.ca_pem))
        tls.verify_mode = ssl.CERT_REQUIRED  # the gateway wants poise's certificate
        async with Stage() as stage:
            app = await stage.webapp("ag1", tls=tls)
            line = f"server ag1 127.0.0.1:{app.port} ssl ca-file {pki.ca_pem} sni str(ag1.test)"
            poise = await stage.poise(
                HEAD
                + "frontend with\n    bind 127.0.0.1:0\n    default_backend with\n"
                + "frontend without\n    bind 127.0.0.1:0\n    default_backend without\n"
                + f"backend with\n    {line} crt {poise_cert}\n"
                + f"backend without\n    retries 0\n    {line}\n"
            )
            client = await Client.connect(poise.port("with"))
            status, _, body = await client.get("/x")
            client.close()
            assert (status, body) == (200, b"ag1 /x")
            client = await Client.connect(poise.port("without"))
            status, _, _ = await client.get("/y")
            client.close()
            assert status in (502, 503)
            assert [seen.target for seen in app.seen] == ["/x"]

    run(loop_kind, main)


def test_a_server_whose_certificate_does_not_verify_is_never_used(loop_kind: str, pki: Pki) -> None:
    good = pki.issue("ag1.pem", ["ag1.yourenvironment.com"])
    wrong_name = pki.issue("ag2.pem", ["ag9.yourenvironment.com"])
    other = Pki(pki.dir.parent, "other", "Rogue CA")
    rogue = other.issue("ag3.pem", ["ag3.yourenvironment.com"])
    expired = pki.issue("ag4.pem", ["ag4.yourenvironment.com"], days=1, now=NOW - 10 * DAY)

    def server(name: str, port: int) -> str:
        return (
            f"    server {name} 127.0.0.1:{port} ssl verify required ca-file {pki.ca_pem} "
            f"sni str({name}.yourenvironment.com)\n"
        )

    async def main() -> None:
        async with Stage() as stage:
            apps = [
                await stage.webapp("ag1", tls=pki.server(good)),
                await stage.webapp("ag2", tls=pki.server(wrong_name)),
                await stage.webapp("ag3", tls=pki.server(rogue)),
            ]
            poise = await stage.poise(
                HEAD.replace("timeout connect 1s", "timeout connect 50ms")
                + "frontend fe\n    bind 127.0.0.1:0\n    default_backend gw\n"
                + "backend gw\n    balance roundrobin\n    option redispatch 1\n    retries 3\n"
                + "".join(server(app.name, app.port) for app in apps)
            )
            for _ in range(6):
                client = await Client.connect(poise.port("fe"))
                status, _, body = await client.get("/agent")
                client.close()
                assert (status, body) == (200, b"ag1 /agent")
            # Not one request reached the gateways that failed verification.
            assert [len(app.seen) for app in apps] == [6, 0, 0]
            await stage.logs.wait_for(
                r"Server gw/ag2: SSL handshake failure: name mismatch: the certificate is "
                r"for 'ag9.yourenvironment.com', not 'ag2.yourenvironment.com'"
            )
            await stage.logs.wait_for(
                r"Server gw/ag3: SSL handshake failure: unknown CA: the certificate is not "
                rf"issued by a CA of ca-file '{pki.ca_pem}'"
            )
            # Each failure is logged once per episode, not once per connection.
            assert len(stage.logs.matching(r"Server gw/ag2: SSL")) == 1
            # The sessions that met a bad server were redispatched ("+" retries).
            await stage.logs.wait_for(r" gw/ag1 .* \d+/\d+/\d+/\d+/\+[12] ", count=2)
        async with Stage() as stage:
            app = await stage.webapp("ag4", tls=pki.server(expired))
            poise = await stage.poise(
                HEAD
                + "frontend fe\n    bind 127.0.0.1:0\n    default_backend gw\n"
                + f"backend gw\n    retries 0\n{server('ag4', app.port)}"
            )
            client = await Client.connect(poise.port("fe"))
            status, _, _ = await client.get("/agent")
            client.close()
            assert status == 503
            assert app.seen == []
            await stage.logs.wait_for(r"Server gw/ag4: SSL handshake failure: expired: ")

    run(loop_kind, main)


def test_checks_over_tls_take_a_server_with_a_wrong_certificate_down(
    loop_kind: str, pki: Pki
) -> None:
    good = pki.issue("ag1.pem", ["ag1.yourenvironment.com"])
    wrong = pki.issue("ag2.pem", ["ag9.yourenvironment.com"])
    seen: list[str | None] = []

    async def main() -> None:
        async with Stage() as stage:
            ag1 = await stage.webapp("ag1", tls=pki.server(good, seen))
            ag2 = await stage.webapp("ag2", tls=pki.server(wrong))
            tcp = await stage.backend("plain")
            check = f"check inter 100ms rise 1 fall 1 ssl verify required ca-file {pki.ca_pem}"
            await stage.poise(
                HEAD
                + "frontend fe\n    bind 127.0.0.1:0\n    default_backend gw\n"
                + "backend gw\n    option httpchk GET /health\n"
                + f"    server ag1 127.0.0.1:{ag1.port} {check} sni str(ag1.yourenvironment.com)\n"
                + f"    server ag2 127.0.0.1:{ag2.port} {check} sni str(ag2.yourenvironment.com)\n"
                + "backend tcpcheck\n    mode tcp\n"
                + f"    server plain 127.0.0.1:{tcp.port} check inter 100ms fall 1 check-ssl "
                + "verify none\n"
            )
            await stage.logs.wait_for(
                r"Server gw/ag2 is DOWN, reason: Layer6 invalid response, info: \"name "
                r"mismatch: the certificate is for 'ag9.yourenvironment.com', not "
                r"'ag2.yourenvironment.com'\""
            )
            # A clear server checked with check-ssl fails its handshake.
            await stage.logs.wait_for(
                r"Server tcpcheck/plain is DOWN, reason: Layer6 invalid response, info: "
                r"\"SSL handshake failure"
            )
            await eventually(lambda: any(s.target == "/health" for s in ag1.seen))
            assert not stage.logs.matching(r"gw/ag1 is DOWN")
            # The checks of ag1 sent its `sni` (HAProxy 2.6 sends none without check-sni).
            assert set(seen) == {"ag1.yourenvironment.com"}

    run(loop_kind, main)


def test_an_sni_taken_from_the_request_keeps_connections_apart(loop_kind: str, pki: Pki) -> None:
    cert = pki.issue("multi.pem", ["a.test", "b.test"])
    seen: list[str | None] = []

    async def main() -> None:
        async with Stage() as stage:
            app = await stage.webapp("multi", tls=pki.server(cert, seen))
            poise = await stage.poise(
                HEAD
                + "frontend fe\n    bind 127.0.0.1:0\n    default_backend be\n"
                + "backend be\n    http-reuse always\n    retries 0\n"
                + f"    server multi 127.0.0.1:{app.port} ssl ca-file {pki.ca_pem} "
                + "sni req.hdr(host)\n"
            )
            client = await Client.connect(poise.port("fe"))
            for host in ("a.test", "a.test", "b.test", "a.test", "c.test"):
                client.writer.write(f"GET /{host} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
                status, _, _ = await client.response()
                assert status == (200 if host != "c.test" else 503)
            client.close()
            # One connection per name (c.test's certificate check failed: never used).
            assert seen == ["a.test", "b.test", "c.test"]
            assert [s.target for s in app.seen] == ["/a.test", "/a.test", "/b.test", "/a.test"]
            await stage.logs.wait_for(r"not 'c.test'")

    run(loop_kind, main)


def test_a_broken_new_certificate_never_replaces_a_working_one(loop_kind: str, pki: Pki) -> None:
    cert = pki.issue("lb.pem", ["old.test"])
    ca_file = pki.dir / "trusted.pem"
    ca_file.write_bytes(pki.ca_pem.read_bytes())

    async def main() -> None:
        async with Stage() as stage:
            app = await stage.webapp("gw", tls=pki.server(pki.issue("gw.pem", ["gw.test"])))
            poise = await stage.poise(
                HEAD
                + f"frontend fe\n    bind 127.0.0.1:0 ssl crt {cert}\n    default_backend be\n"
                + f"backend be\n    server gw 127.0.0.1:{app.port} ssl ca-file {ca_file} "
                + "sni str(gw.test)\n"
            )
            tls = poise.runtime.tls
            assert tls is not None
            backend = poise.ctx.io[poise.ctx.backends["be"]]
            server_tls = backend.server_tls[1]
            port = poise.port("fe")
            assert await presented(port, "old.test") == ["old.test"]
            # A CA file that became a server certificate: refused, the old one stays.
            ca_file.write_bytes(cert.read_bytes())
            with pytest.raises(TlsError, match=f"'{ca_file}' is not a CA file"):
                tls.reload()
            assert backend.server_tls[1] is server_tls
            ca_file.write_bytes(pki.ca_pem.read_bytes())
            good = cert.read_bytes()
            good_cert, good_key = good.split(KEY_START)
            # A certificate without its key, then a key that belongs to another one.
            cert.write_bytes(good_cert)
            with pytest.raises(TlsError, match=f"certificate '{cert}': no private key"):
                tls.reload()
            other = pki.issue("other.pem", ["new.test"]).read_bytes()
            cert.write_bytes(other.split(KEY_START)[0] + KEY_START + good_key)
            with pytest.raises(TlsError, match="does not match the certificate"):
                tls.reload()
            assert await presented(port, "old.test") == ["old.test"]
            # A good new certificate is taken.
            cert.write_bytes(other)
            tls.reload()
            assert await presented(port, "new.test") == ["new.test"]
            assert await presented(port, None) == ["new.test"]
            assert backend.server_tls[1] is not server_tls
            # The new contexts work: a request through the re-read certificates.
            body = await body_of(port, pki.client(), "new.test", "/via-gw")
            assert body == b"gw /via-gw"

    run(loop_kind, main)


def test_what_openssl_refuses_is_an_error_not_a_silent_default() -> None:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    with pytest.raises(ValueError, match="OpenSSL does not know the curves 'P-999'"):
        openssl.set_groups(context, "P-999")
    with pytest.raises(ValueError, match=r"no TLSv1\.3 ciphersuite of 'TLS_NOPE' is known"):
        openssl.set_ciphersuites(context, "TLS_NOPE")
    openssl.set_ciphersuites(context, "TLS_AES_128_GCM_SHA256")
    suites = [c["name"] for c in context.get_ciphers() if c["protocol"] == "TLSv1.3"]
    assert suites == ["TLS_AES_128_GCM_SHA256"]
