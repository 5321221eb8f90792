"""A small running world for the runtime API's unit tests: real model objects (ServerState,
Backend with a real balancer) under the proxies of HAProxy's test configuration, and the
frontends' run-time counters as the shell keeps them. `World.apply` carries out a
command's effects on them as net/admin_socket.py does on net/context.py's objects.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from poise.admin import commands, stats
from poise.admin.commands import Answer, Level, Session, execute
from poise.config import model
from poise.core.backend import Backend
from poise.core.balancer.factory import make_balancer
from poise.core.server import ServerState
from poise.core.sockstats import SocketCounters
from poise.core.traffic import Rate

WHERE = model.Where("test.cfg", 1)
HEADER_2_6 = (
    "# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,eresp,wretr,"
    "wredis,status,weight,act,bck,chkfail,chkdown,lastchg,downtime,qlimit,pid,iid,sid,throttle,"
    "lbtot,tracked,type,rate,rate_lim,rate_max,check_status,check_code,check_duration,hrsp_1xx,"
    "hrsp_2xx,hrsp_3xx,hrsp_4xx,hrsp_5xx,hrsp_other,hanafail,req_rate,req_rate_max,req_tot,"
    "cli_abrt,srv_abrt,comp_in,comp_out,comp_byp,comp_rsp,lastsess,last_chk,last_agt,qtime,"
    "ctime,rtime,ttime,agent_status,agent_code,agent_duration,check_desc,agent_desc,check_rise,"
    "check_fall,check_health,agent_rise,agent_fall,agent_health,addr,cookie,mode,algo,conn_rate,"
    "conn_rate_max,conn_tot,intercepted,dcon,dses,wrew,connect,reuse,cache_lookups,cache_hits,"
    "srv_icur,src_ilim,qtime_max,ctime_max,rtime_max,ttime_max,eint,idle_conn_cur,"
    "safe_conn_cur,used_conn_cur,need_conn_est,uweight,agg_server_status,"
    "agg_server_check_status,agg_check_status,-,ssl_sess,ssl_reused_sess,ssl_failed_handshake,"
    "h2_headers_rcvd,h2_data_rcvd,h2_settings_rcvd,h2_rst_stream_rcvd,h2_goaway_rcvd,"
    "h2_detected_conn_protocol_errors,h2_detected_strm_protocol_errors,h2_rst_stream_resp,"
    "h2_goaway_resp,h2_open_connections,h2_backend_open_streams,h2_total_connections,"
    "h2_backend_total_streams,h1_open_connections,h1_open_streams,h1_total_connections,"
    "h1_total_streams,h1_bytes_in,h1_bytes_out,h1_spliced_bytes_in,h1_spliced_bytes_out,"
)


def server(name: str, sid: int, port: int, **kw: object) -> model.Server:
    address = model.Address("ipv4", "127.0.0.1", port)
    return model.Server(name, address, WHERE, sid, **kw)  # type: ignore[arg-type]


@dataclass
class Frontend:
    """A frontend's run-time counters (what core/frontend.py holds)."""

    proxy: model.Proxy
    maxconn: int
    cur_conn: int = 0
    cum_conn: int = 0
    max_conn_seen: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    hrsp: list[int] = field(default_factory=lambda: [0] * 6)
    req_tot: int = 0
    intercepted: int = 0
    denied_req: int = 0
    denied_resp: int = 0
    failed_req: int = 0
    denied_conn: int = 0
    denied_sess: int = 0
    paused: bool = False
    sockets: list[SocketCounters] = field(default_factory=list)
    sess_rate: Rate = field(default_factory=Rate)
    conn_rate: Rate = field(default_factory=Rate)
    req_rate: Rate = field(default_factory=Rate)

    @property
    def name(self) -> str:
        return self.proxy.name


def make_backend(proxy: model.Proxy) -> Backend:
    states = [ServerState(s, proxy.name) for s in proxy.servers]
    allbackups = model.Option.ALLBACKUPS in proxy.options
    return Backend(proxy, states, lambda st: make_balancer(proxy.balance, st, allbackups))


@dataclass
class World:
    """The proxies of HAProxy's test configuration (ids as HAProxy 2.6 numbers them):

    frontend fe (bind ..., default_backend be); backend be: s1 weight 10, s2 weight 20
    backup, s3 disabled; listen li: server a; backend st (balance static-rr): x weight 10
    check maxconn 7 maxqueue 9; backend hs (balance source): h.
    """

    maxconn: int = 4096
    hard_maxconn: int = 4096
    now: float = 1007.25
    session: Session = field(default_factory=lambda: Session(Level.ADMIN))
    sessions: list[stats.SessionInfo] = field(default_factory=list)
    effects: list[commands.Effect] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.fe = model.Proxy("fe", model.Capability.FRONTEND, WHERE, id=2, default_backend="be")
        be = model.Proxy(
            "be", model.Capability.BACKEND, WHERE, id=3,
            servers=(
                server("s1", 1, 18081, weight=10),
                server("s2", 2, 18082, weight=20, backup=True),
                server("s3", 3, 18083, disabled=True),
            ),
        )  # fmt: skip
        li = model.Proxy("li", model.Capability.LISTEN, WHERE, id=4, servers=(server("a", 1, 1),))
        st = model.Proxy(
            "st", model.Capability.BACKEND, WHERE, id=5,
            balance=model.Balance(model.Algorithm.STATIC_RR),
            servers=(server("x", 1, 2, weight=10, check=True, maxconn=7, maxqueue=9),),
        )  # fmt: skip
        hs = model.Proxy(
            "hs", model.Capability.BACKEND, WHERE, id=6,
            balance=model.Balance(model.Algorithm.SOURCE), servers=(server("h", 1, 3),),
        )  # fmt: skip
        self.backends = {p.name: make_backend(p) for p in (be, li, st, hs)}
        self.frontends = {p.name: Frontend(p, 4096) for p in (self.fe, li)}
        self.info = stats.AdminInfo(
            pid=4242, started=1000.0, start_time=1_700_000_000.5, version="0.1.0",
            release_date="2026/11/21", node="node1",
        )  # fmt: skip

    def view(self) -> stats.View:
        return stats.View(
            self.info, self.frontends, self.backends, maxconn=self.maxconn, actconn=3,
            cum_conns=17, stopping=False, now=self.now, hard_maxconn=self.hard_maxconn,
            tasks=5, sessions=lambda: self.sessions,
        )  # fmt: skip

    def run(self, line: str, level: Level | None = None) -> Answer:
        if level is not None:
            self.session = Session(level)
        answer = execute(line, self.session, self.view())
        for effect in answer.effects:
            self.apply(effect)
        return answer

    def text(self, line: str, level: Level | None = None) -> str:
        return self.run(line, level).text

    def apply(self, effect: commands.Effect) -> None:
        """What net/admin_socket.py does with an effect, on this world's frontends."""
        self.effects.append(effect)
        if isinstance(effect, commands.SetMaxconn):
            if effect.frontend is None:
                self.maxconn = effect.value
            else:
                self.frontends[effect.frontend].maxconn = effect.value
        elif isinstance(effect, commands.Pause):
            self.frontends[effect.frontend].paused = effect.paused
        elif isinstance(effect, commands.ClearFrontends):
            for frontend in self.frontends.values():
                frontend.max_conn_seen = 0
                if effect.every:
                    frontend.cum_conn = frontend.bytes_in = frontend.bytes_out = 0
                    frontend.req_tot = 0
                    frontend.hrsp[:] = [0] * 6

    def srv(self, backend: str, name: str) -> ServerState:
        found = self.backends[backend].server(name)
        assert found is not None
        return found

    def state(self) -> list[object]:
        """Everything a refused command must leave as it was."""
        servers = [
            (b.name, s.name, s.id, s.weight, s.admin, s.last_change, s.addr, s.port, s.maxconn)
            for b in self.backends.values()
            for s in b.servers
        ]
        frontends = [
            (f.name, f.maxconn, f.paused, f.max_conn_seen) for f in self.frontends.values()
        ]
        return [*servers, *frontends, self.maxconn]


def rows(text: str) -> dict[tuple[str, str], dict[str, str]]:
    """`show stat` output as {(pxname, svname): {column: value}}."""
    lines = text.split("\n")
    names = lines[0][2:].split(",")
    return {
        (fields[0], fields[1]): dict(zip(names, fields, strict=True))
        for fields in (line.split(",") for line in lines[1:] if line)
    }
