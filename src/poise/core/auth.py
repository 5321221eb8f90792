"""HTTP basic authentication against `userlist` sections (configuration.txt 3.4, 7.3.6
`http_auth`, `http_auth_group`): the user a request's `Authorization: Basic` header
names, when its password is right.

A clear (`insecure-password`) password is compared in constant time; a hashed one is
checked as crypt(3) would (passlib's MD5-, SHA-256- and SHA-512-crypt and DES, and the
`bcrypt` package's $2a$/$2b$/$2y$, of which crypt(3) reads the first 72 bytes of the
password: the kinds config/haproxy_userlist.py lets through). As HAProxy warns, a hash
costs CPU on every request that carries credentials.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import warnings
from collections.abc import Callable

import bcrypt

with warnings.catch_warnings():  # passlib looks for the `crypt` module Python 3.13 drops
    warnings.simplefilter("ignore", DeprecationWarning)
    from passlib.hash import des_crypt, md5_crypt, sha256_crypt, sha512_crypt

from poise.config import patterns
from poise.config.model import UserlistUser
from poise.core.http.message import Request

_SCHEMES = {"$1$": md5_crypt, "$5$": sha256_crypt, "$6$": sha512_crypt}
BCRYPT = ("$2a$", "$2b$", "$2y$")


def credentials(req: Request) -> tuple[str, str] | None:
    """(user, password) of the request's `Authorization: Basic` header."""
    header = req.headers.get("authorization")
    if header is None:
        return None
    scheme, _, token = header.strip(" \t").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(token.strip(" \t"), validate=True).decode("latin-1")
    except (binascii.Error, ValueError):
        return None
    user, colon, password = decoded.partition(":")
    return (user, password) if colon else None


def verify(user: UserlistUser, password: str) -> bool:
    if user.password is None:
        return False
    if not user.hashed:
        return hmac.compare_digest(
            user.password.encode("latin-1", "replace"), password.encode("latin-1", "replace")
        )
    if user.password.startswith(BCRYPT):
        secret = password.encode("latin-1", "replace")[:72]  # crypt(3) reads no further
        try:
            return bcrypt.checkpw(secret, user.password.encode("ascii"))
        except ValueError:  # not a hash bcrypt can read: no match, as crypt(3) gives
            return False
    scheme = _SCHEMES.get(user.password[:3], des_crypt)
    try:
        return bool(scheme.verify(password.encode("latin-1", "replace"), user.password))
    except ValueError:  # a hash passlib cannot read: no match, as crypt(3) gives
        return False


def authenticated(listname: str) -> Callable[[Request], UserlistUser | None]:
    """The user of userlist `listname` the request authenticates as, if any."""

    def user_of(req: Request) -> UserlistUser | None:
        found = credentials(req)
        userlist = patterns.USERLISTS.get(listname)
        if found is None or userlist is None:
            return None
        user = userlist.user(found[0])
        return user if user is not None and verify(user, found[1]) else None

    return user_of
