"""Runtime state of one server: what changes while poise runs (health, admin state,
weight, sessions). Pure: the I/O shell and the runtime commands change it, the balancers
and the stats read it.
"""

from __future__ import annotations

from enum import Enum
from typing import TYPE_CHECKING, Protocol

from poise.config import model
from poise.config.model import ANY_ADDRESSES
from poise.core.dyncookie import dynamic_cookie
from poise.core.traffic import Traffic

if TYPE_CHECKING:
    from poise.core.health import Health

# HAProxy's BE_WEIGHT_SCALE: a dynamic balancer weighs a server weight x ramp, with ramp 16
# except while `slowstart` ramps it up (core/slowstart.py).
WEIGHT_SCALE = 16


class Load(Protocol):
    """The backend's side of a dynamic limit (core/backend.py)."""

    cur_sess: int  # HAProxy's beconn
    fullconn: int


class AdminState(Enum):
    """The operator's word on a server (`set server B/S state ...`)."""

    READY = "ready"
    DRAIN = "drain"  # keeps persistent clients, gets no new ones
    MAINT = "maint"  # gets nothing


class ServerState:
    """One server of a backend, as the balancers see it."""

    __slots__ = (
        "addr",
        "admin",
        "backend",
        "backup",
        "bytes_in",
        "bytes_out",
        "check_enabled",
        "cli_abrt",
        "config",
        "cookie",
        "cur_sess",
        "denied_resp",
        "dyncookie_key",
        "failed_checks",
        "failed_conns",
        "failed_resp",
        "health",
        "hrsp",
        "id",
        "initial_weight",
        "last_change",
        "load",
        "max_queued",
        "max_sess",
        "maxconn",
        "minconn",
        "name",
        "port",
        "port_offset",
        "queued",
        "ramp",
        "ramp_ratio",
        "redispatches",
        "resolution_maint",
        "retries",
        "sockpair_fd",
        "srv_abrt",
        "stopping",
        "total_sess",
        "traffic",
        "transparent",
        "up",
        "warm_since",
        "weight",
    )

    def __init__(self, config: model.Server, backend: str, addr: str | None = None) -> None:
        self.config = config
        self.name = config.name
        self.backend = backend
        self.id = config.id
        # The resolved IP address (config.address.host may be a DNS name).
        self.addr = addr if addr is not None else config.address.host
        self.port = config.address.port
        # `+N`/`-N`: the client's destination port plus N (self.port is then None).
        self.port_offset = config.address.port_offset
        # At 0.0.0.0 or ::: connections go to the address the client connected to.
        self.transparent = self.addr in ANY_ADDRESSES
        # The value of the backend's persistence cookie naming this server: its own
        # `cookie VALUE`, else one derived from the backend's `dynamic-cookie-key` while
        # dynamic cookies are on (core/dyncookie.py; the backend sets the key).
        self.cookie = config.cookie
        self.dyncookie_key: str | None = None
        self.weight = config.weight
        self.initial_weight = config.weight
        self.backup = config.backup
        # HAProxy (cfgparse): `minconn` above `maxconn` (or alone) raises `maxconn` to it;
        # `maxconn` alone is a fixed limit (minconn = maxconn).
        self.maxconn = max(config.maxconn, config.minconn)
        self.minconn = config.minconn or self.maxconn
        # 0 < minconn < maxconn: the limit follows the backend's load (dynamic_maxconn);
        # the backend sets itself here then.
        self.load: Load | None = None
        self.admin = AdminState.MAINT if config.disabled else AdminState.READY
        # HAProxy's RMAINT: in maintenance because its name resolves to no address (""),
        # apart from the operator's word; a `resolvers` section sets and clears it.
        self.resolution_maint = self.addr == "" and config.address.family != "unix"
        # `server sockpair@N`: the descriptor this process sends connections over (N, or
        # the copy a master handed to its worker); set by the runtime.
        self.sockpair_fd: int | None = None
        # Health checks run for this server. A server added at run time with `check` has
        # them configured but not running (HAProxy 2.6 waits for `enable health`).
        self.check_enabled = config.check
        # HAProxy starts a checked server UP: its first failed check takes it down.
        self.up = True
        # NOLB (HAProxy's SRV_ST_STOPPING): up, but a check said 404 under `http-check
        # disable-on-404`: it keeps its persistent clients and gets no new ones.
        self.stopping = False
        self.cur_sess = 0  # sessions established or connecting to this server
        self.max_sess = 0
        self.total_sess = 0
        self.queued = 0  # requests waiting in this server's own queue
        self.max_queued = 0  # qmax
        # lbtot, connect/reuse, the times, rates, chkdown and downtime (core/traffic.py).
        self.traffic = Traffic()
        self.failed_checks = 0
        self.failed_conns = 0  # connection attempts that failed (HAProxy's econ)
        # Per-request counters (core/counters.py says when each one counts).
        self.bytes_in = 0
        self.bytes_out = 0
        self.hrsp = [0] * 6  # response heads it sent, by class: [other, 1xx, ..., 5xx]
        self.cli_abrt = 0
        self.srv_abrt = 0
        self.denied_resp = 0  # dresp
        self.failed_resp = 0  # eresp
        self.retries = 0  # wretr
        self.redispatches = 0  # wredis
        self.last_change = 0.0  # clock reading of the last state change
        # `slowstart` (core/slowstart.py): since when its weight and limit ramp up (None:
        # no ramp), its weight's share in sixteenths, its limit's in percent.
        self.warm_since: float | None = None
        self.ramp = WEIGHT_SCALE
        self.ramp_ratio = 100
        # The rise/fall counter and last result of its health check (the check scheduler
        # sets it; the stats read it), None while not checked.
        self.health: Health | None = None

    @property
    def usable(self) -> bool:
        """May the balancer send a new client here?"""
        return (
            self.up
            and not self.stopping
            and self.admin is AdminState.READY
            and self.weight > 0
            and not self.resolution_maint
        )

    @property
    def serves_persistent(self) -> bool:
        """May a client that is already bound to this server (cookie) come back?"""
        return self.up and self.admin is not AdminState.MAINT and not self.resolution_maint

    @property
    def maxqueue(self) -> int:
        """`maxqueue`: how many requests may wait for this server (0: no limit)."""
        return self.config.maxqueue

    @property
    def in_maint(self) -> bool:
        """In maintenance by the operator's word or for want of an address."""
        return self.admin is AdminState.MAINT or self.resolution_maint

    def set_addr(self, addr: str, port: int | None) -> bool:
        """Where new connections go from now on (`set server addr`, a DNS answer);
        whether anything changed (the caller then drops idle connections)."""
        changed = addr != self.addr or port != self.port
        self.addr, self.port = addr, port
        self.transparent = addr in ANY_ADDRESSES
        if self.dyncookie_key is not None:
            self.use_dynamic_cookie(self.dyncookie_key)
        return changed

    def use_dynamic_cookie(self, key: str | None) -> None:
        """Dynamic cookies on with this key (None: off). A server's own `cookie VALUE`
        always wins, as HAProxy's SRV_F_COOKIESET does."""
        self.dyncookie_key = key
        if self.config.cookie is not None:
            return
        self.cookie = None if key is None else dynamic_cookie(key, self.addr, self.port)

    @property
    def req_tot(self) -> int:
        """HAProxy counts a server's requests as the response heads it sent."""
        return sum(self.hrsp)

    @property
    def full(self) -> bool:
        limit = self.maxconn
        if self.load is not None and limit:
            limit = self.dynamic_maxconn(self.load)
        if self.warm_since is not None and limit:  # `slowstart`
            limit = max(1, limit * self.ramp_ratio // 100)
        return 0 < limit <= self.cur_sess

    def dynamic_maxconn(self, load: Load) -> int:
        """HAProxy's srv_dynamic_maxconn: from `minconn` up to `maxconn` as the backend's
        connections go from 0 to its `fullconn`, never under `minconn`."""
        maxconn, fullconn = self.maxconn, load.fullconn
        if load.cur_sess >= fullconn or self.minconn >= maxconn:
            return maxconn
        return max(self.minconn, load.cur_sess * maxconn // fullconn)

    @property
    def status(self) -> str:
        """HAProxy's status word for stats and logs."""
        if self.in_maint:
            return "MAINT"
        if not self.up:
            return "DOWN"
        if self.stopping and self.admin is not AdminState.DRAIN:
            return "NOLB"
        return "DRAIN" if self.admin is AdminState.DRAIN or self.weight == 0 else "UP"

    def __repr__(self) -> str:
        return f"<server {self.backend}/{self.name} {self.status} w={self.weight}>"
