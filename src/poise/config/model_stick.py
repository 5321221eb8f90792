"""Stick tables as data (configuration.txt 4.2 `stick-table`, 7.3.3 the `sc*_`/`src_*`
fetches): a proxy's table, the data each entry stores, and the rule actions that track a
key in a table (`track-sc0|1|2`) or change what a tracked entry stores (`sc-inc-gpc0`,
`sc-set-gpt0` ...). Pure; the tables themselves are core/sticktable.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from poise.config.model_http import Condition, Sample
from poise.config.where import Where

KeyType = Literal["ip", "ipv6", "integer", "string", "binary"]
# How a stored datum is kept and shown: a 32-bit unsigned counter, a signed integer, a
# 64-bit counter, or a rate over a period (HAProxy's freq_ctr).
DataKind = Literal["uint", "sint", "ull", "rate", "dict"]
# HAProxy 2.6's data types, in its order (the order `show table` lists them in).
DATA_TYPES: dict[str, DataKind] = {
    "server_id": "sint",
    "gpt0": "uint",
    "gpc0": "uint",
    "gpc0_rate": "rate",
    "conn_cnt": "uint",
    "conn_rate": "rate",
    "conn_cur": "uint",
    "sess_cnt": "uint",
    "sess_rate": "rate",
    "http_req_cnt": "uint",
    "http_req_rate": "rate",
    "http_err_cnt": "uint",
    "http_err_rate": "rate",
    "bytes_in_cnt": "ull",
    "bytes_in_rate": "rate",
    "bytes_out_cnt": "ull",
    "bytes_out_rate": "rate",
    "gpc1": "uint",
    "gpc1_rate": "rate",
    "server_key": "dict",
    "http_fail_cnt": "uint",
    "http_fail_rate": "rate",
}
# The types HAProxy 2.6 has and poise does not store yet (the arrays).
LATER_DATA_TYPES = frozenset({"gpt", "gpc", "gpc_rate"})
# What a table used by `stick` rules stores whatever its `store` says (HAProxy adds them).
STICK_DATA = ("server_id", "server_key")
# Key sizes in bytes: HAProxy's defaults, and the type's own for fixed-size keys.
KEY_SIZES: dict[KeyType, int] = {"integer": 4, "ip": 4, "ipv6": 16, "string": 32, "binary": 32}


@dataclass(frozen=True, slots=True)
class StickTable:
    """`stick-table` in the proxy `name`. `key_size` is HAProxy's: a string key holds up
    to key_size - 1 characters. `expire` in ms (None: entries never expire, only the
    oldest go when the table is full, unless `nopurge`). `store` is each datum stored,
    with its period in ms for a rate (0 otherwise), in DATA_TYPES order."""

    name: str
    type: KeyType
    size: int
    where: Where
    key_size: int = 4
    expire: int | None = None
    nopurge: bool = False
    store: tuple[tuple[str, int], ...] = ()
    peers: str = ""  # `peers NAME`: the `peers` section that replicates it ("": none)

    def period(self, data: str) -> int | None:
        """The datum's period (0: not a rate), or None when the table does not store it."""
        for name, period in self.store:
            if name == data:
                return period
        return None


StickKind = Literal["track", "inc-gpc", "set-gpt"]


@dataclass(frozen=True, slots=True)
class StickAction:
    """A rule action on a stick counter: `track-scN KEY [table T]` (kind "track", `key`
    the sample), `sc-inc-gpc0|1(N)` ("inc-gpc", `index` 0 or 1), `sc-set-gpt0(N) VALUE`
    ("set-gpt", `value` an integer, or `key` the sample that gives it). `table` is the table's
    proxy ("": the rule's own proxy, until the link pass resolves it)."""

    kind: StickKind
    counter: int
    table: str = ""
    key: Sample | None = None
    index: int = 0
    value: int = 0


StickRuleKind = Literal["on", "match", "store-request", "store-response"]
STICK_KINDS: tuple[StickRuleKind, ...] = ("on", "match", "store-request", "store-response")


@dataclass(frozen=True, slots=True)
class StickRule:
    """`stick on|match|store-request|store-response PATTERN [table T] [if|unless COND]`
    in a backend: `match` sends a request whose key is in table T to the server stored
    there; `store-*` stores the server the request went to under its key (`on`: both).
    `table` is the table's proxy (the backend's own when not written)."""

    kind: StickRuleKind
    key: Sample
    table: str
    where: Where
    condition: Condition | None = None

    @property
    def matches(self) -> bool:
        return self.kind in ("on", "match")

    @property
    def stores(self) -> bool:
        return self.kind != "match"
