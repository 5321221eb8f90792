"""The global `default-path` through `poise run` and `haproxy`, both started from `/`:
with `config`, `parent` and `origin DIR`, an `errorfile` and a map file named relatively
are read from the configuration's directory, its parent, or DIR, and with `current` (or
no `default-path`) from the start-up directory. Each answer must be the same from both.
A relative `crt` and `ca-file` follow it too (checked on the linked configuration)."""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from poise.config.haproxy import parse
from tests.support import accepting, free_port, run
from tests.webapp import request

pytestmark = pytest.mark.e2e
CONFIG = """\
global
    default-path {mode}
defaults
    mode http
    timeout connect 2s
    retries 0
    timeout client 5s
    timeout server 5s
frontend fe
    bind 127.0.0.1:{port}
    errorfile 503 {prefix}files/503.http
    http-request return status 200 content-type text/plain lf-string "%[path,map({prefix}files/paths.map,none)]" if {{ path_beg /m }}
    default_backend down
backend down
    server s 127.0.0.1:{closed}
"""  # noqa: E501
# (mode, where the config is, the prefix written before the file names), under the
# temporary directory holding files/ (and origin/files/).
CASES = (
    ("config", "cfg.cfg", ""),
    ("parent", "sub/cfg.cfg", ""),
    ("origin {tmp}/origin", "cfg.cfg", ""),
    ("current", "cfg.cfg", "{tmp}/"),
)


def files(root: Path, tag: str) -> None:
    folder = root / "files"
    folder.mkdir(parents=True)
    page = f"HTTP/1.1 503 Down\r\nContent-Length: {len(tag)}\r\n\r\n{tag}"
    (folder / "503.http").write_text(page)
    (folder / "paths.map").write_text(f"/m {tag}\n")


async def answers(command: list[str], tmp: Path, closed: int) -> list[str]:
    seen = []
    for mode, place, prefix in CASES:
        port = free_port()
        cfg = tmp / place
        cfg.parent.mkdir(exist_ok=True)
        text = CONFIG.format(
            mode=mode.format(tmp=tmp), port=port, prefix=prefix.format(tmp=tmp), closed=closed
        )
        cfg.write_text(text)
        proc = subprocess.Popen([*command, str(cfg)], stdout=subprocess.DEVNULL, cwd="/")
        try:
            await accepting(port)
            for path in ("/", "/m"):
                raw = f"GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n".encode()
                got = await request(port, raw, until_close=True)
                status, body = got.splitlines()[0], got.split(b"\r\n\r\n")[-1]
                seen.append(f"{mode} {path}: {status!r} {body!r}")
        finally:
            proc.terminate()
            proc.wait(5)
    return seen


def test_default_path_as_haproxy(loop_kind: str) -> None:
    async def main() -> None:
        closed = free_port()
        with tempfile.TemporaryDirectory(prefix="dp", dir="/tmp") as name:
            tmp = Path(name)
            files(tmp, "top")
            files(tmp / "origin", "origin")
            ours = await answers([sys.executable, "-m", "poise.cli", "run", "-f"], tmp, closed)
            theirs = await answers(["haproxy", "-db", "-f"], tmp, closed)
        assert ours[0].endswith("b'top'") and ours[5].endswith("b'origin'")
        assert ours == theirs

    run(loop_kind, main, timeout=90)


def test_certificates_follow_it() -> None:
    text = """\
global
    crt-base certs
    default-path origin /srv/lb
frontend fe
    mode http
    bind 127.0.0.1:8443 ssl crt site.pem ca-file ca.pem verify optional
    bind 127.0.0.1:8444 ssl crt /abs/site.pem
    default_backend be
    timeout client 1s
backend be
    mode http
    timeout connect 1s
    timeout server 1s
    server s 127.0.0.1:1 ssl crt client.pem ca-file ca.pem
"""
    config, diagnostics = parse([("/etc/haproxy/haproxy.cfg", text)], {})
    assert config is not None, [str(d) for d in diagnostics]
    fe, be = config.proxy("fe"), config.proxy("be")
    assert fe is not None and be is not None
    tls = [bind.tls for bind in fe.binds]
    assert tls[0] is not None and tls[1] is not None
    assert tls[0].certificates[0].path == "/srv/lb/certs/site.pem"
    assert tls[0].ca_file == "/srv/lb/ca.pem"
    assert tls[1].certificates[0].path == "/abs/site.pem"
    server = be.servers[0].tls
    assert server is not None
    assert (server.crt, server.ca_file) == ("/srv/lb/certs/client.pem", "/srv/lb/ca.pem")
