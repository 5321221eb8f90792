"""`userlist` sections (configuration.txt 3.4): `group NAME [users U1,U2]` and `user NAME
[password HASH|insecure-password TEXT] [groups G1,G2]`, checked as HAProxy 2.6 checks
them (its messages). A hashed password must be a crypt(3) kind poise can verify
(core/auth.py): MD5 `$1$`, SHA-256 `$5$`, SHA-512 `$6$`, bcrypt `$2a$` `$2b$` `$2y$`, or
DES; another kind is refused
at its line (HAProxy would accept it and never match). Pure.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from poise.config.diagnostics import Diagnostic, error, warning
from poise.config.haproxy_draft import Problem
from poise.config.model import Userlist, UserlistUser, Where

_DES = re.compile(r"[./0-9A-Za-z]{13}")
_SHA_MD5 = re.compile(r"\$(1|5|6)\$(rounds=\d+\$)?[^$]{0,16}\$[./0-9A-Za-z]+")
_BCRYPT = re.compile(r"\$2[aby]\$(0[4-9]|[12]\d|3[01])\$[./0-9A-Za-z]{53}")


def check_hash(text: str) -> None:
    if _SHA_MD5.fullmatch(text) or _DES.fullmatch(text) or _BCRYPT.fullmatch(text):
        return
    raise Problem(
        f"password hash '{text}' is of a kind poise cannot check (crypt(3): $1$ MD5, "
        "$5$ SHA-256, $6$ SHA-512, $2a$/$2b$/$2y$ bcrypt or DES)"
    )


class UserlistParser:
    """The lines of one `userlist` section; `value()` is the section when it ends."""

    def __init__(self, name: str, where: Where, diagnostics: list[Diagnostic]) -> None:
        self.name, self.where = name, where
        self.diagnostics = diagnostics
        self.groups: dict[str, list[str]] = {}  # group -> the users its line names
        self.users: list[UserlistUser] = []

    def feed(self, where: Where, words: Sequence[str]) -> None:
        keyword, args = words[0], list(words[1:])
        try:
            if keyword == "group":
                self.group(args)
            elif keyword == "user":
                self.user(args, where)
            else:
                raise Problem(f"unknown keyword '{keyword}' in 'users' section")
        except Problem as exc:
            self.diagnostics.append(error(where, str(exc), keyword))

    def group(self, args: list[str]) -> None:
        if not args:
            raise Problem("'group' expects a group name")
        name, rest = args[0], args[1:]
        if name in self.groups:
            raise Problem(f"duplicated group '{name}' in userlist '{self.name}'")
        members: list[str] = []
        while rest:
            if rest[0] != "users" or len(rest) < 2:
                raise Problem(f"'group' only supports 'users' (got '{rest[0]}')")
            members.extend(u for u in rest[1].split(",") if u)
            rest = rest[2:]
        self.groups[name] = members

    def user(self, args: list[str], where: Where) -> None:
        if not args:
            raise Problem("'user' expects a user name")
        name, rest = args[0], args[1:]
        password: str | None = None
        hashed = False
        groups: list[str] = []
        while rest:
            word = rest[0]
            if word not in ("password", "insecure-password", "groups"):
                raise Problem(
                    f"'user' only supports 'password', 'insecure-password' and 'groups' "
                    f"(got '{word}')"
                )
            if len(rest) < 2:
                raise Problem(f"'{word}' expects an argument")
            if word == "groups":
                groups.extend(g for g in rest[1].split(",") if g)
            else:
                password, hashed = rest[1], word == "password"
                if hashed:
                    check_hash(password)
            rest = rest[2:]
        if any(u.name == name for u in self.users):
            self.diagnostics.append(
                warning(where, f"ignoring duplicated user '{name}' in userlist '{self.name}'.")
            )
            return
        self.users.append(UserlistUser(name, password, hashed, tuple(groups), where))

    def value(self) -> Userlist:
        """The section, each user with all its groups; a group or user named but not
        declared is HAProxy's error."""
        users = []
        for user in self.users:
            for group in user.groups:
                if group not in self.groups:
                    self.diagnostics.append(
                        error(
                            user.where,
                            f"userlist '{self.name}': no such group '{group}' specified in "
                            f"user '{user.name}'",
                        )
                    )
            more = [g for g, members in self.groups.items() if user.name in members]
            groups = tuple(dict.fromkeys([*user.groups, *more]))
            users.append(UserlistUser(user.name, user.password, user.hashed, groups, user.where))
        known = {u.name for u in self.users}
        for group, members in self.groups.items():
            for member in members:
                if member not in known:
                    self.diagnostics.append(
                        error(
                            self.where,
                            f"userlist '{self.name}': no such user '{member}' specified in "
                            f"group '{group}'",
                        )
                    )
        return Userlist(self.name, self.where, tuple(self.groups), tuple(users))
