"""bcrypt `userlist` passwords against HAProxy 2.6 (which checks them with crypt(3)):
the same `$2y$` (htpasswd -B), `$2b$` and `$2a$` hashes in one configuration run by
`poise run` and by `haproxy`; the right password, a wrong one, one that differs only
beyond its 72nd byte (crypt(3) reads no further) and an unknown user must get the same
answers."""

from __future__ import annotations

import base64
from pathlib import Path

import bcrypt
import pytest

from tests.e2e.side_by_side import both, running, send
from tests.support import run

pytestmark = pytest.mark.e2e

SECRET = "s3cret-" + "x" * 65  # 72 bytes
HASH = bcrypt.hashpw(SECRET.encode(), bcrypt.gensalt(rounds=4)).decode()[4:]
CONFIG = f"""\
defaults
    mode http
    timeout connect 2s
    timeout client 5s
    timeout server 5s
userlist L
    user y password $2y${HASH}
    user b password $2b${HASH}
    user a password $2a${HASH}
frontend fe
    bind 127.0.0.1:{{port}}
    http-request auth realm poise unless {{ http_auth(L) }}
    http-request return status 200
"""
TRIES = [
    ("y", SECRET),
    ("b", SECRET),
    ("a", SECRET),
    ("y", SECRET[:-1]),
    ("b", "wrong"),
    ("a", SECRET + "beyond"),
    ("nobody", SECRET),
]


async def exchange(command: list[str], tmp: Path) -> list[str]:
    statuses = []
    async with running(command, tmp, CONFIG) as proxy:
        for user, password in TRIES:
            token = base64.b64encode(f"{user}:{password}".encode()).decode()
            head = f"GET / HTTP/1.1\r\nHost: x\r\nAuthorization: Basic {token}\r\n"
            answer = await send(proxy.port, [head.encode() + b"Connection: close\r\n\r\n"])
            statuses.append(answer.split(b"\r\n", 1)[0].decode())
    return statuses


def test_bcrypt_passwords_are_checked_as_haproxy_checks_them(loop_kind: str) -> None:
    async def main() -> None:
        ours, theirs = await both(exchange)
        assert theirs[:3] == ["HTTP/1.1 200 OK"] * 3 and theirs[5] == "HTTP/1.1 200 OK"
        assert ours == theirs

    run(loop_kind, main)
