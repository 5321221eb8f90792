"""The decisions of Keepalived's checker process for one `virtual_server`, pure: which real
servers are in the pool and with what weight, as checker results come in (Keepalived 2.2.7's
check_*.c and ipwrapper.c are the reference):

- a checker that fails while up is retried `retry` times, `delay_before_retry` apart,
  before it counts as failed (`log_all_failures` logs each try); then the next check is
  `delay_loop` later;
- a real server is alive while none of its checkers has failed; one that dies is removed
  from the pool, or kept with weight 0 with `inhibit_on_failure`, and its `notify_down`
  runs (`notify_up` when it comes back);
- `alpha`: real servers start dead, until their checkers succeed; otherwise alive;
- MISC_CHECK with `misc_dynamic`: exit status 0 good, 1 failed, 2-255 good with the weight
  set to status - 2;
- quorum: the sum of the weights of the alive real servers; below `quorum - hysteresis` it
  is lost (`quorum_down` runs; with a `sorry_server`, every real server leaves the pool
  and the sorry server takes their place), from `quorum + hysteresis` on it is gained again
  (`quorum_up`).

Every change is said as a log line in Keepalived's words. The shell (vrrp/lvs.py) runs the
probes, feeds their results here, and applies `weights()` to its proxy's servers.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from poise.config.keepalived_lvs_model import Checker, RealServer, VirtualServer
from poise.config.keepalived_model import Command


@dataclass(frozen=True, slots=True)
class Log:
    text: str


@dataclass(frozen=True, slots=True)
class Run:
    """Run a notify_up/down or quorum_up/down script."""

    command: Command


Action = Log | Run


@dataclass(slots=True)
class Result:
    """One probe's outcome: `ok`, why not, and for misc_dynamic the weight it asks for."""

    ok: bool
    reason: str = ""
    weight: int | None = None


@dataclass(slots=True)
class _Checker:
    config: Checker
    up: bool
    retry_it: int = 0


@dataclass(slots=True)
class _Real:
    config: RealServer
    alive: bool
    weight: int
    checkers: list[_Checker] = field(default_factory=list)
    failed: set[int] = field(default_factory=set)


class Pool:
    """One virtual server's real servers, their checkers and its quorum."""

    def __init__(self, vs: VirtualServer) -> None:
        self.vs = vs
        self.reals: list[_Real] = []
        for rs in vs.real_servers:
            # `alpha` (inherited down to the checkers): each checker starts failed.
            checkers = [_Checker(c, not c.alpha) for c in rs.checkers]
            failed = {i for i, c in enumerate(checkers) if not c.up}
            self.reals.append(_Real(rs, not failed, rs.weight, checkers, failed))
        self.quorum_up = self._weight_sum() >= vs.quorum
        self.sorry_alive = vs.sorry_server is not None and not self.quorum_up

    def carry(self, old: Pool) -> None:
        """After a reload: a real server that was there before keeps its state (a failed one
        stays out until a check passes), as Keepalived keeps them."""
        before = {(r.config.address, r.config.port): r for r in old.reals}
        for real in self.reals:
            previous = before.get((real.config.address, real.config.port))
            if previous is None or previous.alive:
                continue
            real.alive = False
            for checker in real.checkers:
                checker.up = False
            real.failed = set(range(len(real.checkers)))
            if not real.checkers:
                real.alive = True
        self.quorum_up = self._weight_sum() >= self.vs.quorum
        self.sorry_alive = self.vs.sorry_server is not None and not self.quorum_up

    # -- what the proxy serves ------------------------------------------------------------

    def weights(self) -> list[int | None]:
        """Per real server: its weight in the pool (0: inhibited), or None when out of it."""
        out: list[int | None] = []
        for real in self.reals:
            if self.sorry_alive:  # quorum lost: the sorry server alone
                out.append(0 if real.config.inhibit_on_failure else None)
            elif real.alive:
                out.append(real.weight)
            else:
                out.append(0 if real.config.inhibit_on_failure else None)
        return out

    def sorry_weight(self) -> int | None:
        if self.vs.sorry_server is None:
            return None
        if self.sorry_alive:
            return 1
        return 0 if self.vs.sorry_server_inhibit else None

    def start(self) -> list[Action]:
        """What Keepalived says at start: the sorry server in, when the quorum is lost."""
        if self.sorry_alive:
            return [Log(self._sorry_line("Enabling", "Adding", "to"))]
        return []

    # -- a checker's result ---------------------------------------------------------------

    def result(self, rs_index: int, ck_index: int, result: Result) -> tuple[float, list[Action]]:
        """Apply one probe's result; returns when to check again (seconds) and what to do."""
        real = self.reals[rs_index]
        checker = real.checkers[ck_index]
        config = checker.config
        label = self._check_label(config)
        actions: list[Action] = []
        if result.ok:
            checker.retry_it = 0
            if result.weight is not None and result.weight != real.weight:
                actions.append(
                    Log(
                        f"Changing weight from {real.weight} to {result.weight} for "
                        f"{'active' if real.alive else 'inactive'} service "
                        f"{real.config.label} of VS {self.vs.name}"
                    )
                )
                real.weight = result.weight
                actions += self._quorum()
            if not checker.up:
                checker.up = True
                actions.append(Log(_success_line(config, label)))
                real.failed.discard(ck_index)
                if not real.failed and not real.alive:
                    actions += self._set_alive(real, True)
            return config.delay_loop, actions
        if checker.up and checker.retry_it < config.retry:
            checker.retry_it += 1
            if config.log_all_failures:  # each failed try of an up checker, not only the last
                actions.append(Log(_failure_line(config, label, result.reason)))
            return config.delay_before_retry, actions
        checker.retry_it = 0
        if checker.up:
            checker.up = False
            if config.retry:
                actions.append(
                    Log(f"Check on service {label} failed after {config.retry} retries.")
                )
            actions.append(Log(_failure_line(config, label, result.reason)))
            real.failed.add(ck_index)
            if real.alive:
                actions += self._set_alive(real, False)
        return config.delay_loop, actions

    def stop(self) -> list[Action]:
        """`omega`: at shutdown the real servers leave, with their notify_down and the
        quorum_down scripts, as Keepalived runs them then."""
        if not self.vs.omega:
            return []
        actions: list[Action] = []
        for real in self.reals:
            if real.alive:
                actions.append(Log(f"Removing service {real.config.label} from VS {self.vs.name}"))
                real.alive = False
                if real.config.notify_down is not None:
                    actions += self._notify(real.config.notify_down, real)
                actions += self._quorum()
        return actions

    # -- inside ---------------------------------------------------------------------------

    def _set_alive(self, real: _Real, alive: bool) -> list[Action]:
        inhibit = real.config.inhibit_on_failure
        if alive:
            verb = "Enabling" if inhibit else "Adding"
            actions: list[Action] = [
                Log(f"{verb} service {real.config.label} to VS {self.vs.name}")
            ]
        else:
            verb = "Disabling" if inhibit else "Removing"
            actions = [Log(f"{verb} service {real.config.label} from VS {self.vs.name}")]
        real.alive = alive
        script = real.config.notify_up if alive else real.config.notify_down
        if script is not None:
            actions += self._notify(script, real)
        return actions + self._quorum()

    def _notify(self, script: Command, real: _Real) -> list[Action]:
        return [
            Log(f"Executing [{script.text}] for service {real.config.label} in VS {self.vs.name}"),
            Run(script),
        ]

    def _weight_sum(self) -> int:
        return sum(r.weight for r in self.reals if r.alive)

    def _quorum(self) -> list[Action]:
        vs = self.vs
        total = self._weight_sum()
        up_threshold = vs.quorum + vs.hysteresis
        down_threshold = vs.quorum - vs.hysteresis
        actions: list[Action] = []
        if not self.quorum_up and total >= up_threshold:
            self.quorum_up = True
            actions.append(
                Log(
                    f"Gained quorum {vs.quorum}+{vs.hysteresis}={up_threshold} <= {total} "
                    f"for VS {vs.name}"
                )
            )
            if self.sorry_alive:
                actions.append(Log(self._sorry_line("Disabling", "Removing", "from")))
                actions.append(Log(f"Adding alive servers to the pool for VS {vs.name}"))
                self.sorry_alive = False
            if vs.quorum_up is not None:
                actions += [Log(f"Executing [{vs.quorum_up.text}] for VS {vs.name}")]
                actions.append(Run(vs.quorum_up))
        elif self.quorum_up and (not total or total < down_threshold):
            self.quorum_up = False
            actions.append(
                Log(
                    f"Lost quorum {vs.quorum}-{vs.hysteresis}={down_threshold} > {total} "
                    f"for VS {vs.name}"
                )
            )
            if vs.quorum_down is not None:
                actions += [Log(f"Executing [{vs.quorum_down.text}] for VS {vs.name}")]
                actions.append(Run(vs.quorum_down))
            if vs.sorry_server is not None:
                actions.append(Log(self._sorry_line("Enabling", "Adding", "to")))
                actions.append(Log(f"Removing alive servers from the pool for VS {vs.name}"))
                self.sorry_alive = True
        return actions

    def _sorry_line(self, inhibited: str, plain: str, preposition: str) -> str:
        assert self.vs.sorry_server is not None
        ip, port = self.vs.sorry_server
        verb = inhibited if self.vs.sorry_server_inhibit else plain
        return f"{verb} sorry server [{ip}]:tcp:{port} {preposition} VS {self.vs.name}"

    @staticmethod
    def _check_label(config: Checker) -> str:
        return f"[{config.connect_ip}]:tcp:{config.connect_port}"


def _success_line(config: Checker, label: str) -> str:
    kind = config.kind.value
    if kind == "TCP_CHECK":
        return f"TCP connection to {label} success."
    if kind == "MISC_CHECK":
        assert config.misc_path is not None
        return f"Misc check for [{label}] by [{config.misc_path.text}] succeeded."
    if kind in ("HTTP_GET", "SSL_GET"):
        return f"Remote Web server {label} succeed on service."
    return f"{kind} on service {label} succeed."


def _failure_line(config: Checker, label: str, reason: str) -> str:
    kind = config.kind.value
    why = f" ({reason})" if reason else ""
    if kind == "MISC_CHECK":
        assert config.misc_path is not None
        return f"Misc check for [{label}] by [{config.misc_path.text}] failed{why}."
    return f"{kind} on service {label} failed{why}."


def misc_result(status: int | None, dynamic: bool, reason: str = "") -> Result:
    """A MISC_CHECK's exit status (None: it timed out or could not run) as a Result:
    0 good; with misc_dynamic 1 is a failure and 2-255 good with the weight status - 2;
    without it any other status is a failure."""
    if status is None:
        return Result(False, reason)
    if status == 0:
        return Result(True)
    if dynamic and status >= 2:
        return Result(True, weight=status - 2)
    return Result(False, reason or f"exited with status {status}")
