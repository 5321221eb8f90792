"""`http-after-response` rules (configuration.txt 4.2): the last edits of every response
before it leaves, the server's and poise's own alike (an error page, a deny, a redirect, a
`return`): header actions, `set-status`, variables and `allow`. As in HAProxy 2.6
(http_eval_after_res_rules), the backend's rules run first, then the frontend's when it
is another proxy; `allow` ends the rules of its proxy. A server's response is edited as a
Response, before its head is written; an answer poise made is already bytes, so its head
is read back, edited and written again (its body is kept). Pure.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from poise.core.http.headers import Headers
from poise.core.http.message import Request, Response

if TYPE_CHECKING:
    from poise.core.http.rules import Rules


def programs(backend: Rules | None, frontend: Rules) -> tuple[Rules, ...]:
    """Whose rules run, in order: the backend's (when one was chosen), the frontend's."""
    if backend is None or backend is frontend:
        return (frontend,) if frontend.after else ()
    return tuple(program for program in (backend, frontend) if program.after)


def apply(rules: Sequence[Rules], req: Request, resp: Response) -> None:
    """Run the rules on `resp` (edited in place)."""
    for program in rules:
        for test, step in program.after:
            if test is not None and not test(req, resp):
                continue
            if step(req, resp, False) is not None:
                break  # allow: this proxy's rules end here


def rewrite(rules: Sequence[Rules], req: Request, answer: bytes) -> tuple[bytes, int | None]:
    """An answer poise made, after the rules: its bytes, and its status when a rule
    changed it (None: unchanged)."""
    end = answer.find(b"\r\n\r\n")
    if end < 0 or not answer.startswith(b"HTTP/"):
        return answer, None
    lines = answer[:end].decode("latin-1").split("\r\n")
    version, _, rest = lines[0].partition(" ")
    code, _, reason = rest.partition(" ")
    if not code.isdigit():
        return answer, None
    items = [(name, value.strip()) for name, _, value in (x.partition(":") for x in lines[1:])]
    resp = Response(int(code), reason, version[5:], Headers(items))
    apply(rules, req, resp)
    status = resp.status if resp.status != int(code) else None
    if not resp.headers.modified and status is None:
        return answer, None
    line = f"HTTP/{resp.version} {resp.status} {resp.reason}\r\n".encode("latin-1")
    return line + resp.headers.encode() + answer[end + 2 :], status
