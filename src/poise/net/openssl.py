"""Three OpenSSL settings Python's ssl module does not offer: the TLS 1.3 cipher suites
(`ciphersuites`), the key-exchange groups (`curves`) and the size of the session cache
(`tune.ssl.cachesize`). poise calls OpenSSL on the
SSL_CTX inside a CPython SSLContext, through the very library Python's _ssl module is
linked with, and checks the handle before using it.

The SSL_CTX pointer is the first field after the object header of CPython's PySSLContext
(`PyObject_HEAD; SSL_CTX *ctx;`, unchanged since Python 3.2). Before any call, poise reads
the context's options through that pointer and compares them with `context.options`: a
layout that differs is refused with an error, never written through.
"""

from __future__ import annotations

import ctypes
import functools
import ssl

# <openssl/ssl.h>: these SSL_CTX_* calls are macros over SSL_CTX_ctrl.
SSL_CTRL_SET_SESS_CACHE_SIZE = 42
SSL_CTRL_SET_SESS_CACHE_MODE = 44
SSL_CTRL_SET_GROUPS_LIST = 92
SSL_SESS_CACHE_OFF = 0


@functools.cache
def _library() -> ctypes.CDLL:
    import _ssl

    library = ctypes.CDLL(_ssl.__file__)
    library.SSL_CTX_set_ciphersuites.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
    library.SSL_CTX_set_ciphersuites.restype = ctypes.c_int
    library.SSL_CTX_get_options.argtypes = [ctypes.c_void_p]
    library.SSL_CTX_get_options.restype = ctypes.c_uint64
    library.SSL_CTX_ctrl.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_long, ctypes.c_char_p]
    library.SSL_CTX_ctrl.restype = ctypes.c_long
    return library


def _handle(context: ssl.SSLContext, what: str) -> int:
    """The context's SSL_CTX*, checked; ValueError when it cannot be trusted."""
    pointer = ctypes.c_void_p.from_address(id(context) + object.__basicsize__).value
    if not pointer or _library().SSL_CTX_get_options(pointer) != int(context.options):
        raise ValueError(f"'{what}' cannot be set with this Python's ssl module")
    return int(pointer)


def set_ciphersuites(context: ssl.SSLContext, suites: str) -> None:
    """The TLS 1.3 suites (OpenSSL's SSL_CTX_set_ciphersuites), checked afterwards
    against what the context lists."""
    pointer = _handle(context, "ciphersuites")
    if _library().SSL_CTX_set_ciphersuites(pointer, suites.encode()) != 1:
        raise ValueError(f"no TLSv1.3 ciphersuite of '{suites}' is known to OpenSSL")
    listed = {c["name"] for c in context.get_ciphers() if c["protocol"] == "TLSv1.3"}
    if not listed or not listed <= set(suites.split(":")):
        raise ValueError(f"OpenSSL did not take the ciphersuites '{suites}'")


def set_groups(context: ssl.SSLContext, groups: str) -> None:
    """The key-exchange groups, in order of preference (SSL_CTX_set1_groups_list)."""
    pointer = _handle(context, "curves")
    if _library().SSL_CTX_ctrl(pointer, SSL_CTRL_SET_GROUPS_LIST, 0, groups.encode()) != 1:
        raise ValueError(f"OpenSSL does not know the curves '{groups}'")


def set_session_cache(context: ssl.SSLContext, size: int) -> None:
    """The server's session cache: `size` sessions, or none at all with 0 (then, with
    tickets off too, every handshake is a full one)."""
    pointer = _handle(context, "tune.ssl.cachesize")
    if size == 0:
        _library().SSL_CTX_ctrl(pointer, SSL_CTRL_SET_SESS_CACHE_MODE, SSL_SESS_CACHE_OFF, None)
    else:
        _library().SSL_CTX_ctrl(pointer, SSL_CTRL_SET_SESS_CACHE_SIZE, size, None)
