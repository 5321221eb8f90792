"""The layer-4 rules of a proxy as data (configuration.txt 4.2 `tcp-request connection`,
`tcp-request session`, `tcp-request content`, `tcp-response content` and their
`inspect-delay`): one TcpRule per line, gathered by hook in TcpRules. Pure.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from poise.config.model_http import Condition, HttpRule
from poise.config.where import Where

# When a rule runs: right after accept (`connection`), once the session exists (after the
# TLS handshake, `session`), on the request's first bytes (`content`), on the response's
# (`response`: `tcp-response content`).
TcpHook = Literal["connection", "session", "content", "response"]
# `expect-proxy`: `tcp-request connection expect-proxy layer4`, the PROXY header read
# first when its condition holds (net/accept.py), as `bind ... accept-proxy` reads it.
TcpAction = Literal["accept", "reject", "close", "variable", "expect-proxy"]


@dataclass(frozen=True, slots=True)
class TcpRule:
    """One rule. `variable` holds a `set-var`, `set-var-fmt` or `unset-var` (as the
    http-request rule of the same text: core/http/rules.py runs it)."""

    hook: TcpHook
    action: TcpAction
    where: Where
    condition: Condition | None = None
    variable: HttpRule | None = None


@dataclass(frozen=True, slots=True)
class TcpRules:
    """A proxy's layer-4 rules by hook (those of its named `defaults` section first). How
    long content rules may wait for data is in the proxy's Timeouts (`inspect`,
    `response_inspect`)."""

    connection: tuple[TcpRule, ...] = ()
    session: tuple[TcpRule, ...] = ()
    content: tuple[TcpRule, ...] = ()
    response: tuple[TcpRule, ...] = ()

    @property
    def any(self) -> bool:
        return bool(self.connection or self.session or self.content or self.response)
