"""`json_query`, `jwt_header_query` and `jwt_payload_query` through `poise run` and
`haproxy` on the same configuration (corpus 157's JWT recipe): strings (escapes
unescaped), numbers (`%g`, or integers with `int`), booleans, nested members and array
elements, what gives nothing (null, arrays, objects, missing members, invalid JSON), and
a JWT's header and claims, whole or queried. Each answer must be the same from both."""

from __future__ import annotations

import base64
import json
import subprocess
from pathlib import Path

import pytest

from tests.e2e.side_by_side import both
from tests.support import accepting, free_port, run
from tests.webapp import request

pytestmark = pytest.mark.e2e
QUERIES = (
    "json_query('$.s')",
    "json_query('$.n')",
    "json_query('$.n','int')",
    "json_query('$.f')",
    "json_query('$.big','int')",
    "json_query('$.t')",
    "json_query('$.no')",
    "json_query('$.o.k')",
    "json_query('$.a[1]')",
    "json_query('$.a')",
    "json_query('$.nul')",
    "json_query('$.esc')",
    "json_query('$.missing')",
)
JWT_QUERIES = (
    "jwt_header_query('$.alg')",
    "jwt_header_query",
    "jwt_payload_query('$.iss')",
    "jwt_payload_query('$.exp','int')",
    "jwt_payload_query('$.scope')",
)


def lines(field: str, queries: tuple[str, ...]) -> str:
    rules = [
        f"    http-request set-var(txn.q{n}) req.fhdr({field}),{q}" for n, q in enumerate(queries)
    ]
    shown = "|".join(f"%[var(txn.q{n})]" for n in range(len(queries)))
    answer = f'http-request return status 200 content-type text/plain lf-string "{shown}"'
    return "\n".join(rules) + f"\n    {answer}\n"


CONFIG = """\
defaults
    mode http
    timeout connect 2s
    timeout client 5s
    timeout server 5s
frontend json
    bind 127.0.0.1:{json_port}
{json_rules}frontend jwt
    bind 127.0.0.1:{jwt_port}
{jwt_rules}"""
DOCS = (
    '{"s":"text","n":42,"f":1.5e3,"big":12345678901234567,"t":true,"no":false,'
    '"o":{"k":"deep"},"a":[1,"two",3],"nul":null,"esc":"a\\"b\\u0041","s":"second"}',
    '{"n":-7.25,"s":"","a":[]}',
    "not json",
)


def b64(data: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


TOKENS = (
    b64({"alg": "RS256", "typ": "JWT"})
    + "."
    + b64({"iss": "me", "exp": 1700000000, "scope": "read write"})
    + ".sig",
    b64({"alg": "HS256"}),
    "not-a-token",
)


async def answers(command: list[str], tmp: Path) -> list[str]:
    json_port, jwt_port = free_port(), free_port()
    cfg = tmp / f"{command[0].rsplit('/', 1)[-1]}.cfg"
    cfg.write_text(
        CONFIG.format(
            json_port=json_port,
            jwt_port=jwt_port,
            json_rules=lines("x-json", QUERIES),
            jwt_rules=lines("x-jwt", JWT_QUERIES),
        )
    )
    proc = subprocess.Popen([*command, str(cfg)], stdout=subprocess.DEVNULL)
    seen = []
    try:
        await accepting(json_port)
        await accepting(jwt_port)
        for port, name, values in ((json_port, "X-Json", DOCS), (jwt_port, "X-Jwt", TOKENS)):
            for value in values:
                raw = f"GET / HTTP/1.1\r\nHost: t\r\n{name}: {value}\r\nConnection: close\r\n\r\n"
                got = await request(port, raw.encode(), until_close=True)
                seen.append(got.partition(b"\r\n\r\n")[2].decode("latin-1"))
    finally:
        proc.terminate()
        proc.wait(5)
    return seen


def test_json_and_jwt_queries_as_haproxy(loop_kind: str) -> None:
    async def main() -> None:
        ours, theirs = await both(answers)
        assert ours[0].startswith("text|42|42|1500||1|0|deep|two|")
        assert ours == theirs

    run(loop_kind, main, timeout=60)
