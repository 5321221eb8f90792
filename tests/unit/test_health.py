"""The rise/fall state machine against a small reference model of HAProxy's counter, the
check intervals, and HAProxy's log texts (compared with lines HAProxy itself writes).
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from hypothesis import given
from hypothesis import strategies as st

from poise.config import model
from poise.core.health import (
    CheckResult,
    Health,
    InitState,
    Severity,
    Transition,
    backend_down_message,
    check_info,
    count_usable,
    health_check_message,
    l4_failed,
    l4_passed,
    l4_timeout,
    server_down_message,
    server_up_message,
    socket_error,
)
from poise.core.server import AdminState, ServerState

OK = l4_passed(0)
REFUSED = l4_failed("Connection refused", 0)
TIMEOUT = l4_timeout(2001)


@dataclass
class Reference:
    """HAProxy's counter restated as its documentation describes rise and fall: while UP,
    `fall` consecutive failed checks take the server down (`margin` is what is left of
    them: any pass restores all of it); while DOWN, `rise` consecutive passes bring it up
    (`passes` so far: any failure starts again from zero)."""

    rise: int
    fall: int
    up: bool
    margin: int = 0
    passes: int = 0

    def check(self, passed: bool) -> Transition | None:
        if self.up:
            if passed:
                self.margin = self.fall
                return None
            self.margin -= 1
            if self.margin > 0:
                return None
            self.up, self.passes = False, 0
            return Transition.DOWN
        if not passed:
            self.passes = 0
            return None
        self.passes += 1
        if self.passes < self.rise:
            return None
        self.up, self.margin = True, self.fall
        return Transition.UP

    @property
    def health(self) -> int:
        """The same state as HAProxy's single counter."""
        return self.rise - 1 + self.margin if self.up else self.passes


def reference(rise: int, fall: int, init: InitState) -> Reference:
    return {
        InitState.UP: Reference(rise, fall, True, margin=1),
        InitState.FULLY_UP: Reference(rise, fall, True, margin=fall),
        InitState.DOWN: Reference(rise, fall, False, passes=rise - 1),
        InitState.FULLY_DOWN: Reference(rise, fall, False, passes=0),
    }[init]


@given(
    rise=st.integers(1, 6),
    fall=st.integers(1, 6),
    init=st.sampled_from(list(InitState)),
    checks=st.lists(st.booleans(), max_size=60),
)
def test_the_counter_matches_the_reference_model(
    rise: int, fall: int, init: InitState, checks: list[bool]
) -> None:
    health = Health(rise, fall, init)
    ref = reference(rise, fall, init)
    assert (health.is_up, health.health) == (ref.up, ref.health)
    for passed in checks:
        result = OK if passed else REFUSED
        assert health.record(result) == ref.check(passed)
        assert (health.is_up, health.health) == (ref.up, ref.health)
        assert 0 <= health.health <= rise + fall - 1


def test_a_server_starts_up_and_its_first_failed_check_takes_it_down() -> None:
    health = Health(rise=2, fall=3)
    assert health.is_up and health.health == 2
    assert health.record(REFUSED) is Transition.DOWN
    assert not health.is_up and health.health == 0
    assert health.record(OK) is None  # 1/2
    assert health.record(OK) is Transition.UP
    assert health.health == 4  # rise + fall - 1: now three failures take it down
    assert [health.record(REFUSED) for _ in range(3)] == [None, None, Transition.DOWN]


def test_the_other_init_states() -> None:
    assert [Health(2, 3, InitState.FULLY_UP).record(REFUSED) for _ in range(1)] == [None]
    fully_up = Health(2, 3, InitState.FULLY_UP)
    assert [fully_up.record(REFUSED) for _ in range(3)] == [None, None, Transition.DOWN]
    down = Health(2, 3, InitState.DOWN)
    assert not down.is_up and down.record(OK) is Transition.UP
    fully_down = Health(2, 3, InitState.FULLY_DOWN)
    assert [fully_down.record(OK) for _ in range(2)] == [None, Transition.UP]


def test_reset_returns_to_the_initial_state() -> None:
    health = Health(3, 2)
    health.record(REFUSED)
    health.reset()  # leaving maintenance
    assert health.is_up and health.health == 3


def test_failed_checks_are_counted_while_the_counter_can_fall() -> None:
    health = Health(2, 3)
    for _ in range(4):
        health.record(REFUSED)
    assert health.failed_checks == 1  # HAProxy counts a failure only while health > 0


def test_for_server_reads_rise_and_fall() -> None:
    address = model.Address("ipv4", "127.0.0.1", 80)
    server = model.Server("s", address, model.NOWHERE, 1, rise=4, fall=1)
    health = Health.for_server(server)
    assert (health.rise, health.fall, health.health) == (4, 1, 4)


def test_rise_and_fall_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        Health(0, 3)


# -- intervals -------------------------------------------------------------------------------


def test_inter_fastinter_downinter() -> None:
    health = Health(2, 3)

    def delay() -> int:
        return health.next_delay(2000, 500, 10_000)

    assert delay() == 500  # starting: up but not fully up: a transition
    health.record(OK)
    health.record(OK)  # fully up
    assert delay() == 2000
    health.record(REFUSED)  # going down
    assert delay() == 500
    health.record(REFUSED)
    health.record(REFUSED)  # down, counter at 0
    assert delay() == 10_000
    health.record(OK)  # coming back up
    assert delay() == 500


@given(rise=st.integers(1, 5), fall=st.integers(1, 5), checks=st.lists(st.booleans()))
def test_unset_fastinter_and_downinter_mean_inter(rise: int, fall: int, checks: list[bool]) -> None:
    health = Health(rise, fall)
    for passed in checks:
        health.record(OK if passed else REFUSED)
        assert health.next_delay(1000) == 1000
        assert health.next_delay(1000, None, None) == health.next_delay(1000, 0, 0) == 1000
        expected = 1000 if health.health == rise + fall - 1 else 3000 if health.health == 0 else 200
        assert health.next_delay(1000, 200, 3000) == expected


# -- what gets reported ----------------------------------------------------------------------


def test_a_report_follows_a_change_of_counter_or_status() -> None:
    health = Health(2, 3)
    health.record(OK)
    assert health.report  # 2 -> 4, and Initializing -> L4OK
    health.record(OK)
    assert not health.report  # nothing changed
    for _ in range(3):
        health.record(REFUSED)
    health.record(REFUSED)
    assert not health.report  # at 0, same status
    health.record(TIMEOUT)
    assert health.report  # still 0, but L4CON -> L4TOUT


def test_status_text_n_of_m() -> None:
    health = Health(2, 3)
    assert health.status() == "1/3 UP"
    health.record(OK)
    assert health.status() == "3/3 UP"
    assert health.status(drain=True) == "3/3 DRAIN"
    health.record(REFUSED)
    assert health.status() == "2/3 UP"
    health.record(REFUSED)
    health.record(REFUSED)
    assert health.status() == "0/2 DOWN"
    health.record(OK)
    assert health.status() == "1/2 DOWN"


# -- log texts -------------------------------------------------------------------------------


def test_server_down_text() -> None:
    message = server_down_message("B", "S", active=1, backups=0, result=REFUSED)
    assert message.level is Severity.ALERT
    assert message.text == (
        'Server B/S is DOWN, reason: Layer4 connection problem, info: "Connection refused",'
        " check duration: 0ms. 1 active and 0 backup servers left. 0 sessions active,"
        " 0 requeued, 0 remaining in queue."
    )


def test_server_up_text() -> None:
    message = server_up_message("B", "S", active=2, backups=0, result=OK)
    assert message.level is Severity.NOTICE
    assert message.text == (
        "Server B/S is UP, reason: Layer4 check passed, check duration: 0ms."
        " 2 active and 0 backup servers online. 0 sessions requeued, 0 total in queue."
    )


def test_lines_haproxy_writes() -> None:
    """Lines that HAProxy 2.x wrote, as quoted in public READMEs and log-shipper reports."""
    up = server_up_message(
        "tcp-k8s-pagoda-ingress-nginx-https",
        "master03.k8s-flannel.freedom.org",
        active=3,
        backups=0,
        result=l4_passed(1),
    )
    assert up.text == (
        "Server tcp-k8s-pagoda-ingress-nginx-https/master03.k8s-flannel.freedom.org is UP,"
        " reason: Layer4 check passed, check duration: 1ms. 3 active and 0 backup servers"
        " online. 0 sessions requeued, 0 total in queue."
    )
    l7 = CheckResult(True, "Layer7 check passed", None, 2, code=200)
    assert server_up_message("ha_app_cluster", "hot", active=1, backups=1, result=l7).text == (
        "Server ha_app_cluster/hot is UP, reason: Layer7 check passed, code: 200,"
        " check duration: 2ms. 1 active and 1 backup servers online. 0 sessions requeued,"
        " 0 total in queue."
    )
    timeout = server_down_message("app", "web1", active=2, backups=0, result=TIMEOUT)
    assert timeout.text.startswith(
        "Server app/web1 is DOWN, reason: Layer4 timeout, check duration: 2001ms."
    )


def test_backup_server_running_on_backup_and_draining() -> None:
    message = server_down_message(
        "B", "S", active=0, backups=1, backup=False, sessions=3, requeued=2, queued=1,
        was_draining=True, result=None,
    )  # fmt: skip
    assert message.level is Severity.NOTICE  # it was draining: no alert
    assert message.text == (
        "Server B/S is DOWN. 0 active and 1 backup servers left. Running on backup."
        " 3 sessions active, 2 requeued, 1 remaining in queue."
    )
    up = server_up_message("B", "bk", active=0, backups=2, backup=True, cause="changed from CLI")
    assert up.text == (
        "Backup Server B/bk is UP, changed from CLI. 0 active and 2 backup servers online."
        " Running on backup. 0 sessions requeued, 0 total in queue."
    )


def test_health_check_report_texts() -> None:
    health = Health(2, 3)
    health.record(OK)
    health.record(REFUSED)
    assert health_check_message("B", "S", REFUSED, health).text == (
        "Health check for server B/S failed, reason: Layer4 connection problem,"
        ' info: "Connection refused", check duration: 0ms, status: 2/3 UP.'
    )
    health.record(REFUSED)
    health.record(REFUSED)
    health.record(OK)
    message = health_check_message("B", "S", OK, health, backup=True)
    assert message.level is Severity.NOTICE
    assert message.text == (
        "Health check for backup server B/S succeeded, reason: Layer4 check passed,"
        " check duration: 0ms, status: 1/2 DOWN."
    )


def test_info_is_ascii_encoded_and_truncated_as_haproxy_does() -> None:
    odd = CheckResult(False, "Layer7 wrong status", 'say "<é>"', -1, code=503)
    assert check_info(odd) == (
        ', reason: Layer7 wrong status, code: 503, info: "say <22><3C><C3><A9><3E><22>"'
    )
    long = CheckResult(False, "Socket error", "x" * 300, 5)
    assert check_info(long) == f', reason: Socket error, info: "{"x" * 127}", check duration: 5ms'
    assert socket_error("nope", 1).status == "SOCKERR"
    assert (OK.status, REFUSED.status, TIMEOUT.status) == ("L4OK", "L4CON", "L4TOUT")


def test_backend_down_text() -> None:
    message = backend_down_message("B")
    assert (message.level, message.text) == (Severity.EMERG, "backend B has no server available!")
    assert backend_down_message("L", kind="proxy").text == "proxy L has no server available!"
    # HAProxy 2.6 on its terminal: "[ALERT]    (8726) : backend 'B' has no server available!"
    assert message.console == "backend 'B' has no server available!"
    assert Severity.EMERG.keyword == "emerg" and Severity.NOTICE.keyword == "notice"


def test_count_usable() -> None:
    address = model.Address("ipv4", "127.0.0.1", 80)
    servers = [
        ServerState(model.Server(f"s{i}", address, model.NOWHERE, i + 1, backup=i >= 3), "b")
        for i in range(5)
    ]
    servers[0].up = False
    servers[1].admin = AdminState.DRAIN
    servers[4].weight = 0
    assert count_usable(servers) == (1, 1)
