"""`poise check` and `poise run` beside `haproxy -c` 2.6 and `keepalived -t` 2.2.7 on the
same files (issues 11.7 and 22.5): a truncated file, control bytes, `$VAR` in addresses,
an expired certificate, `crt-base` and crt-lists, a stray `{` in keepalived.conf. Where
the reference binary is installed, its verdict is asserted too, so a difference shows."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cryptography import x509

from tests.support import free_port
from tests.tlskit import Pki

POISE = [sys.executable, "-m", "poise.cli"]
HAPROXY = shutil.which("haproxy")
KEEPALIVED = shutil.which("keepalived")

pytestmark = pytest.mark.e2e

HEAD = """\
defaults
    mode tcp
    timeout connect 1s
    timeout client 5s
    timeout server 5s
"""


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args, capture_output=True, text=True, timeout=30, check=False, env=env or os.environ
    )


def poise_check(path: Path, env: dict[str, str] | None = None) -> tuple[int, list[str]]:
    result = run(*POISE, "check", "-f", str(path), env=env)
    assert "Traceback" not in result.stderr, result.stderr
    return result.returncode, result.stderr.splitlines()


def haproxy_check(path: Path, env: dict[str, str] | None = None) -> tuple[int, str] | None:
    """HAProxy's verdict (exit status, alerts) or None when it is not installed."""
    if HAPROXY is None:
        return None
    result = run(HAPROXY, "-c", "-f", str(path), env=env)
    return result.returncode, result.stderr


LISTEN = HEAD + "listen l\n    bind 127.0.0.1:8080\n"
LEXER_CASES = [
    # (file, line, message): the same words in `poise check` and `haproxy -c` 2.6.
    (LISTEN + "    server s1 127.0.0.1:8080", 8, "Missing LF on last line, file might have "
     "been truncated at position 29."),
    (LISTEN + "    maxconn 10\0junk\n    bogus\n", 8, "Stray NUL character at position 15."),
    (LISTEN + "    description" + " x" * 63 + " \n", 8, "too many words, truncating after "
     "word 64, position 137: <x>."),
]  # fmt: skip


@pytest.mark.parametrize(("text", "line", "message"), LEXER_CASES)
def test_lexing_errors_say_what_haproxy_says(
    tmp_path: Path, text: str, line: int, message: str
) -> None:
    cfg = tmp_path / "lex.cfg"
    cfg.write_bytes(text.encode())
    status, lines = poise_check(cfg)
    assert status == 1 and f"{cfg}:{line}: error: {message}" in lines, lines
    reference = haproxy_check(cfg)
    if reference is not None:
        assert reference[0] == 1 and f"[{cfg}:{line}]: {message}" in reference[1]


def test_control_bytes_are_escaped_and_each_message_is_one_line(tmp_path: Path) -> None:
    cfg = tmp_path / "bytes.cfg"
    cfg.write_bytes(
        HEAD.encode() + b'listen l\n    bind 127.0.0.1:8080\n    bogus\x1b[2J\x07 "a\\rb\\nc"\n'
    )
    status, lines = poise_check(cfg)
    assert status == 1
    assert lines[0] == f"{cfg}:8: error: 'bogus\\x1b[2J\\x07': unknown keyword in 'listen' section"
    assert all(line.isprintable() for line in lines)
    reference = haproxy_check(cfg)
    if reference is not None:
        assert reference[0] == 1 and f"[{cfg}:8] : unknown keyword 'bogus" in reference[1]


def test_an_unset_variable_in_a_server_port_means_the_client_s_port(tmp_path: Path) -> None:
    # HAProxy 2.6 expands `${VAR}` in addresses even unquoted; unset, the server has no
    # port and connects to the port the client reached (srv_port 0), without a warning.
    port = free_port()
    backend = socket.socket()
    backend.bind(("127.0.0.2", port))
    backend.listen()
    cfg = tmp_path / "env.cfg"
    cfg.write_text(
        HEAD + f"listen l\n    bind 127.0.0.1:{port}\n    server s1 127.0.0.2:${{s1_port}}\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "s1_port"}
    assert poise_check(cfg, env) == (0, [])
    reference = haproxy_check(cfg, env)
    assert reference is None or reference[0] == 0, reference
    proc = subprocess.Popen(
        [*POISE, "run", "-db", "-f", str(cfg)], env=env, stderr=subprocess.PIPE, text=True
    )
    try:
        client = _connect(port)
        backend.settimeout(10)
        upstream, _ = backend.accept()  # 127.0.0.2, the port the client connected to
        upstream.sendall(b"hello")
        client.settimeout(5)
        assert client.recv(5) == b"hello"
        client.close()
        upstream.close()
    finally:
        proc.terminate()
        proc.communicate(timeout=10)
        backend.close()


def test_an_unset_variable_in_a_bind_port_is_refused_as_haproxy_refuses_it(
    tmp_path: Path,
) -> None:
    cfg = tmp_path / "env.cfg"
    cfg.write_text(HEAD + "listen l\n    bind :${s1_port}\n    server s1 127.0.0.1:80\n")
    env = {k: v for k, v in os.environ.items() if k != "s1_port"}
    status, lines = poise_check(cfg, env)
    assert status == 1
    assert lines[0] == (
        f"{cfg}:7: error: 'bind': missing port in ':' (from ':${{s1_port}}': is an environment "
        "variable unset?)"
    )
    reference = haproxy_check(cfg, env)
    if reference is not None:
        assert reference[0] == 1 and "missing port specification in ':${s1_port}'" in reference[1]
    status, _ = poise_check(cfg, {**env, "s1_port": "8080"})
    assert status == 0  # set, the same line is a port (HAProxy: valid too)


def _connect(port: int, deadline: float = 10.0) -> socket.socket:
    end = time.monotonic() + deadline
    while True:
        try:
            return socket.create_connection(("127.0.0.1", port), timeout=5)
        except ConnectionRefusedError:
            if time.monotonic() > end:
                raise
            time.sleep(0.02)


def test_an_expired_certificate_is_served_with_a_warning_from_a_crt_list_under_crt_base(
    tmp_path: Path,
) -> None:
    # crt-base applies to the relative lines of a crt-list, not to the crt-list's own path
    # (HAProxy 2.6: ssl_crtlist.c); an expired crt is loaded and served.
    pki = Pki(tmp_path)
    now = dt.datetime.now(dt.UTC)
    pki.issue("old.pem", ["old.test"], days=1, now=now - dt.timedelta(days=3))
    crt_list = tmp_path / "certs.list"
    crt_list.write_text("old.pem old.test\n")
    port = free_port()
    cfg = tmp_path / "tls.cfg"
    cfg.write_text(
        f"global\n    crt-base {pki.dir}\n"
        + HEAD
        + f"listen l\n    bind 127.0.0.1:{port} ssl crt-list {crt_list}\n"
        "    server s1 127.0.0.1:9\n"
    )
    status, lines = poise_check(cfg)
    assert status == 0, lines
    assert any(
        line.startswith(
            f"{cfg}:9: warning: 'bind': certificate '{pki.dir}/old.pem': "
            "the certificate expired on "
        )
        for line in lines
    ), lines
    reference = haproxy_check(cfg)
    assert reference is None or reference[0] == 0, reference
    proc = subprocess.Popen(
        [*POISE, "run", "-db", "-f", str(cfg)], stderr=subprocess.PIPE, text=True
    )
    try:
        raw = _connect(port)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        with context.wrap_socket(raw, server_hostname="old.test") as tls:
            der = tls.getpeercert(binary_form=True)
        assert der is not None
        served = x509.load_der_x509_certificate(der)
        assert served.not_valid_after_utc < now
        assert "old.test" in str(
            served.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        )
    finally:
        proc.terminate()
        proc.communicate(timeout=10)


@pytest.mark.parametrize(
    ("block", "item"),
    [
        ("virtual_ipaddress", "198.51.100.10/24"),
        ("unicast_peer", "198.51.100.2"),
        ("track_interface", "eth0"),
        ("track_script", "chk"),
    ],
)
def test_a_stray_brace_in_a_keepalived_list_is_an_error_not_a_traceback(
    tmp_path: Path, block: str, item: str
) -> None:
    conf = tmp_path / "keepalived.conf"
    conf.write_text(
        'vrrp_script chk {\n    script "/bin/true"\n}\n'
        "vrrp_instance VI_1 {\n    state BACKUP\n    interface eth0\n"
        "    virtual_router_id 51\n    priority 100\n"
        f"    virtual_ipaddress {{\n        198.51.100.10/24\n    }}\n"
        f"    {block} {{\n        {item}\n        {{\n    }}\n}}\n"
    )
    result = run(*POISE, "check", "-k", str(conf))
    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode == 1
    assert f"{conf}:14: error: '{block}': '{{' after " in result.stderr
    if KEEPALIVED is not None:
        reference = run(KEEPALIVED, "-t", "-f", str(conf))
        assert reference.returncode != 0  # 5 or 6: the configuration test failed
        assert "missing '}'s or extra '{'s" in reference.stderr + reference.stdout


def test_a_vrrp_instance_on_the_loopback_interface_is_refused_as_keepalived_refuses_it(
    tmp_path: Path,
) -> None:
    conf = tmp_path / "keepalived.conf"
    conf.write_text(
        "vrrp_instance VI_1 {\n    state MASTER\n    interface lo\n    virtual_router_id 51\n"
        "    priority 100\n    virtual_ipaddress {\n        127.0.0.100\n    }\n}\n"
    )
    result = run(*POISE, "check", "-k", str(conf))
    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode == 1
    assert (
        f"{conf}:1: error: 'interface': (VI_1) cannot use a loopback interface (lo) for vrrp"
        in result.stderr
    )
    if KEEPALIVED is not None:
        reference = run(KEEPALIVED, "-t", "-f", str(conf))
        assert reference.returncode == 5
        assert "(VI_1) cannot use a loopback interface (lo) for vrrp" in reference.stderr
