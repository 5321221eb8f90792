"""Variables: `set-var`, `set-var-fmt`, `unset-var` and the `var` fetch (configuration.txt
`http-request set-var`, 7.3.2 `var`), by scope.

Where each scope lives: `txn`, `req` and `res` in the request's own dict (`Request.vars`),
`sess` in the client connection's record (`Request.conn.vars`, core/txn.py; a request
given no connection record keeps them with its own), `proc` in this module's `PROC`,
shared by the whole process. Both dicts are None until a variable is set, so a
configuration without variables costs nothing. `check` variables belong to health
checks: an HTTP rule reading one finds none and setting one does nothing, as in HAProxy.
`req` and `res` variables are kept in the same dict as `txn` ones: a `var(req.x)` read by
a response rule gives nothing (core/fetch.py scopes it), as HAProxy keeps each only for
its own phase.

Pure: values are the samples of core/fetch.py.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from poise.core.fetch import Value
    from poise.core.http.message import Request

Store = dict[str, "Value"]
Getter = Callable[["Request"], "Value | None"]
# The variables of scope `proc`: the whole process shares them.
PROC: Store = {}


def _store(name: str) -> Callable[[Request, bool], Store | None]:
    """How a variable's dict is found from a request (`create`: make it when missing)."""
    scope = name.partition(".")[0]
    if scope == "proc":
        return lambda req, create: PROC
    if scope == "check":
        return lambda req, create: None

    def txn(req: Request, create: bool) -> Store | None:
        if req.vars is None and create:
            req.vars = {}
        return req.vars

    if scope == "sess":

        def sess(req: Request, create: bool) -> Store | None:
            holder = req.conn
            if holder is None:
                return txn(req, create)
            if holder.vars is None and create:
                holder.vars = {}
            return holder.vars

        return sess
    return txn


def getter(name: str) -> Getter:
    """The value of variable `name` for a request, None when it is not set."""
    store = _store(name)

    def get(req: Request) -> Value | None:
        found = store(req, False)
        return found.get(name) if found else None

    return get


def _empty(value: Value) -> bool:
    return isinstance(value, str) and not value


def _allowed(conditions: Sequence[str], exists: bool, old: Value | None, new: Value) -> bool:
    """The conditions of `set-var(NAME,COND...)`, all of which must hold."""
    for condition in conditions:
        if condition == "ifexists":
            ok = exists
        elif condition == "ifnotexists":
            ok = not exists
        elif condition == "ifempty":
            ok = _empty(new)
        elif condition == "ifnotempty":
            ok = not _empty(new)
        elif condition == "ifset":
            ok = old is not None
        elif condition == "ifnotset":
            ok = old is None
        else:  # ifgt, iflt: only between two integers, else true
            both = isinstance(old, int) and isinstance(new, int)
            both = both and not isinstance(old, bool) and not isinstance(new, bool)
            if not both:
                ok = True
            elif condition == "ifgt":
                ok = old > new  # type: ignore[operator]
            else:
                ok = old < new  # type: ignore[operator]
        if not ok:
            return False
    return True


def setter(name: str, conditions: Sequence[str] = ()) -> Callable[[Request, Value], None]:
    """Set variable `name` of a request's transaction (when its conditions hold)."""
    store = _store(name)
    proc = name.startswith("proc.")  # proc variables exist from the start (HAProxy)

    if not conditions:

        def plain(req: Request, value: Value) -> None:
            found = store(req, True)
            if found is not None:
                found[name] = value

        return plain

    def conditional(req: Request, value: Value) -> None:
        found = store(req, True)
        if found is None:
            return
        old = found.get(name)
        if _allowed(conditions, proc or old is not None, old, value):
            found[name] = value

    return conditional


def unsetter(name: str) -> Callable[[Request], None]:
    store = _store(name)

    def unset(req: Request) -> None:
        found = store(req, False)
        if found:
            found.pop(name, None)

    return unset
