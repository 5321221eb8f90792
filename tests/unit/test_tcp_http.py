"""HTTP fetches on a TCP connection's bytes (core/tcp_http.py): the request head the held
bytes begin with, once whole, fills the connection's request for the rules."""

from __future__ import annotations

from poise.core.http.message import Request
from poise.core.tcp_http import read_head
from poise.core.txn import Conn


def connection() -> Request:
    conn = Conn()
    conn.client_ip = "10.0.0.1"
    return Request("", "", "1.1", src="10.0.0.1", dst="10.0.0.2", dst_port=80, conn=conn)


def test_a_whole_head_is_read_once() -> None:
    req = connection()
    read_head(req, b"GET /disk/a HTTP/1.1\r\nHost: files.test\r\n")  # not whole yet
    assert (req.method, req.uri) == ("", "")
    read_head(req, b"GET /disk/a HTTP/1.1\r\nHost: files.test\r\n\r\nbody")
    assert (req.method, req.uri, req.version) == ("GET", "/disk/a", "1.1")
    assert req.headers.get("host") == "files.test"
    assert (req.src, req.dst, req.dst_port) == ("10.0.0.1", "10.0.0.2", 80)  # kept
    read_head(req, b"POST /other HTTP/1.0\r\n\r\n")
    assert req.uri == "/disk/a"  # the first head stays


def test_bytes_that_are_not_http_leave_it_empty() -> None:
    for data in (b"\x16\x03\x01\x00\x05hello\r\n\r\n", b"SSH-2.0-OpenSSH\r\n\r\n"):
        req = connection()
        read_head(req, data)
        assert (req.method, req.uri) == ("", "")
