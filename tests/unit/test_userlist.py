"""`userlist` sections, `http_auth(L)`, `http_auth_group(L)` and `http-request auth`
(configuration.txt 3.4, 7.3.6, 4.2): how they are read (HAProxy 2.6.12's messages), who
is let in, and the 401 HAProxy 2.6.12 sent for the same configuration, byte for byte."""

from __future__ import annotations

import base64

import bcrypt
import pytest

from poise.config.haproxy import parse
from poise.config.model import UserlistUser, Where
from poise.core.auth import verify
from poise.core.http import rules
from poise.core.http.headers import Headers
from poise.core.http.message import Request
from tests.unit.test_http_rules import BASE

# crypt(3) of "pw" (glibc, as HAProxy checks it).
SHA512 = (
    "$6$saltsalt$pauPrmdmG4BTE9h2HPmywiw152IFch6BJCEsaY6D.PLTfpV8sqvXwWdyfsgVgozkYH9B80bAip"
    "/08R2BPH2xk/"
)
MD5 = "$1$abcdefgh$IQtUouv7y7Q9dRWkQEPCc."
FRONTEND = """frontend f
  bind 127.0.0.1:18701
  acl a http_auth(L)
  acl g http_auth_group(L) g1
  http-request auth realm "My Realm" if !a
  http-request return status 200 content-type text/plain lf-string "ok %[http_auth_group(L)]\\n" \
    if g
  http-request return status 200 content-type text/plain string "ok nogroup\\n"
"""
USERLIST = f"""userlist L
  group g1 users scott
  group g2
  user scott insecure-password elgato
  user tiger password {SHA512} groups g2
  user lion password {MD5}
"""
CHALLENGE = (
    b"HTTP/1.1 401 Unauthorized\r\ncontent-length: 112\r\ncache-control: no-cache\r\n"
    b'content-type: text/html\r\nwww-authenticate: Basic realm="My Realm"\r\n\r\n'
    b"<html><body><h1>401 Unauthorized</h1>\nYou need a valid user and password to access "
    b"this content.\n</body></html>\n"
)


def program(text: str = BASE + FRONTEND + USERLIST) -> rules.Rules:
    config, diagnostics = parse([("a.cfg", text)], {})
    assert config is not None, [str(d) for d in diagnostics]
    proxy = config.proxy("f")
    assert proxy is not None
    return rules.Rules(proxy)


def answer(prog: rules.Rules, user: str | None = None, version: str = "1.1") -> bytes:
    headers = [("Host", "x")]
    if user is not None:
        headers.append(("Authorization", "Basic " + base64.b64encode(user.encode()).decode()))
    verdict = rules.request_rules(prog, Request("GET", "/", version, Headers(headers)))
    assert verdict.response is not None
    return verdict.response


def test_who_is_let_in_as_haproxy_lets_them() -> None:
    prog = program()
    assert answer(prog) == CHALLENGE
    assert answer(prog, "scott:elgato").endswith(b"\r\n\r\nok scott\n")
    assert answer(prog, "tiger:pw").endswith(b"\r\n\r\nok nogroup\n")  # SHA-512-crypt
    assert answer(prog, "lion:pw").endswith(b"\r\n\r\nok nogroup\n")  # MD5-crypt
    assert answer(prog, "tiger:bad") == CHALLENGE
    assert answer(prog, "nobody:elgato") == CHALLENGE
    assert answer(prog, "scott:elgato2") == CHALLENGE
    closed = answer(prog, "tiger:bad", version="1.0")
    assert closed == CHALLENGE.replace(b"\r\n\r\n", b"\r\nconnection: close\r\n\r\n", 1)


def test_the_realm_defaults_to_the_proxy_name() -> None:
    text = BASE + "frontend f\n  bind :80\n  http-request auth\n  default_backend b\nbackend b\n"
    assert b'www-authenticate: Basic realm="f"\r\n' in answer(program(text))


def errors(userlist: str, frontend: str = FRONTEND) -> list[str]:
    _, diagnostics = parse([("a.cfg", BASE + frontend + userlist)], {})
    return [str(d) for d in diagnostics if d.severity.value == "error"]


@pytest.mark.parametrize(
    ("userlist", "message"),
    [
        ("userlist L\n  group g1\n  user u1 insecure-password p groups nog\n",
         "userlist 'L': no such group 'nog' specified in user 'u1'"),
        ("userlist L\n  group g1 users nou\n",
         "userlist 'L': no such user 'nou' specified in group 'g1'"),
        ("userlist L\n  group g1\n  bogus x\n", "unknown keyword 'bogus' in 'users' section"),
        ("userlist L\n  group g2\n", "acl http_auth_group(): invalid group 'g1'."),
        ("userlist M\n  group g1\n", "unable to find userlist 'L' referenced in arg 1 of ACL"),
        ("userlist L\n  group g1\n  user u password notahash\n", "a kind poise cannot check"),
        ("userlist L\n  group g1\n  user u password $2b$05$tooshort\n",
         "a kind poise cannot check"),
    ],
)  # fmt: skip
def test_bad_userlists(userlist: str, message: str) -> None:
    found = errors(userlist)
    assert any(message in line for line in found), found


def test_a_duplicated_user_is_ignored_with_haproxys_warning() -> None:
    text = BASE + FRONTEND + USERLIST + "  user scott insecure-password other\n"
    config, diagnostics = parse([("a.cfg", text)], {})
    assert config is not None
    assert any("ignoring duplicated user 'scott' in userlist 'L'." in str(d) for d in diagnostics)
    assert answer(program(text), "scott:elgato").endswith(b"ok scott\n")


def test_bcrypt_passwords_are_checked_as_crypt3_does() -> None:
    """$2a$, $2b$ and $2y$ hashes (as `htpasswd -B` and `mkpasswd -m bcrypt` write them)
    are accepted and checked; crypt(3) reads only the first 72 bytes of a password."""
    long = "p" * 72
    hashed = bcrypt.hashpw(long.encode(), bcrypt.gensalt(rounds=4)).decode()
    for prefix in ("$2a$", "$2b$", "$2y$"):
        text = prefix + hashed[4:]
        assert not errors(f"userlist L\n  group g1\n  user u password {text}\n")
        user = UserlistUser("u", text, True, (), Where("a.cfg", 1))
        assert verify(user, long) and verify(user, long + "beyond 72 bytes")
        assert not verify(user, long[:-1]) and not verify(user, "")
