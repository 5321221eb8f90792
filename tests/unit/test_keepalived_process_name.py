"""keepalived.conf's process names (`process_name`, `vrrp_process_name`, `process_names`;
`checker_process_name` and `bfd_process_name` name processes poise has not), as poise reads
them, each beside `keepalived -t` 2.2.7's verdict on the same file where it is installed."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from poise.config.keepalived import parse
from tests.unit.keepalived_support import FakeSource, errors, warnings

KEEPALIVED = shutil.which("keepalived")
PATH = "/etc/keepalived/keepalived.conf"
INSTANCE = """
vrrp_instance VI_1 {
    interface eth0
    virtual_router_id 51
    virtual_ipaddress {
        198.51.100.170/24
    }
}
"""


def text(*lines: str) -> str:
    return "global_defs {\n" + "".join(f" {line}\n" for line in lines) + "}\n" + INSTANCE


def keepalived_says(tmp_path: Path, conf: str) -> tuple[int, str] | None:
    """keepalived -t's exit status and messages on the global_defs of `conf` (no instance:
    its interface may not exist here), or None when it is not installed."""
    if KEEPALIVED is None:
        return None
    path = tmp_path / "keepalived.conf"
    path.write_text(conf.replace(INSTANCE, ""))
    result = subprocess.run(
        [KEEPALIVED, "-t", "-f", str(path)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    return result.returncode, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("lines", "process", "vrrp", "own"),
    [
        (("process_name lb",), "lb", None, "lb"),
        (("vrrp_process_name lb_vrrp",), None, "lb_vrrp", "lb_vrrp"),
        (("process_name lb", "vrrp_process_name lb_vrrp"), "lb", "lb_vrrp", "lb_vrrp"),
        (("process_names",), None, "keepalived_vrrp", "keepalived_vrrp"),
        (("vrrp_process_name x", "process_names"), None, "keepalived_vrrp", "keepalived_vrrp"),
        (("process_names", "vrrp_process_name x"), None, "x", "x"),
    ],
)
def test_the_names_are_read_and_poise_s_one_process_takes_the_vrrp_one(
    tmp_path: Path, lines: tuple[str, ...], process: str | None, vrrp: str | None, own: str
) -> None:
    config, diagnostics = parse(PATH, FakeSource({PATH: text(*lines)}))
    assert config is not None and not diagnostics, diagnostics
    defaults = config.global_defs
    assert (defaults.process_name, defaults.vrrp_process_name) == (process, vrrp)
    assert defaults.own_name == own
    reference = keepalived_says(tmp_path, text(*lines))
    if reference is not None:
        assert reference == (0, ""), reference


def test_a_name_longer_than_the_kernel_keeps_is_truncated_with_keepalived_words(
    tmp_path: Path,
) -> None:
    conf = text("vrrp_process_name averyveryverylongname_vrrp")
    config, diagnostics = parse(PATH, FakeSource({PATH: conf}))
    assert config is not None and not errors(diagnostics)
    assert config.global_defs.vrrp_process_name == "averyveryverylo"
    message = "Process name averyveryverylongname_vrrp more than 15 characters, truncating"
    assert [str(d) for d in warnings(diagnostics)] == [
        f"{PATH}:2: warning: 'vrrp_process_name': {message}"
    ]
    reference = keepalived_says(tmp_path, conf)
    if reference is not None:
        assert message in reference[1], reference


def test_a_missing_name_is_an_error_as_keepalived_says(tmp_path: Path) -> None:
    conf = text("process_name")
    config, diagnostics = parse(PATH, FakeSource({PATH: conf}))
    assert config is None
    (problem,) = [str(d) for d in errors(diagnostics)]
    assert problem.startswith(f"{PATH}:2: error: 'process_name': ")
    reference = keepalived_says(tmp_path, conf)
    if reference is not None:
        status, said = reference
        assert status != 0 and "is missing a parameter after keyword `process_name`" in said


@pytest.mark.parametrize(
    "keyword", ["checker_process_name", "lvs_process_name", "bfd_process_name"]
)
def test_the_names_of_processes_poise_has_not_are_warnings(keyword: str) -> None:
    config, diagnostics = parse(PATH, FakeSource({PATH: text(f"{keyword} lb_check")}))
    assert config is not None and not errors(diagnostics)
    (warning,) = [str(d) for d in warnings(diagnostics)]
    assert f":2: warning: '{keyword}': poise " in warning and "ignored" in warning


def test_process_names_takes_no_value_and_says_so_where_keepalived_is_silent(
    tmp_path: Path,
) -> None:
    conf = text("process_names x")
    config, diagnostics = parse(PATH, FakeSource({PATH: conf}))
    assert config is not None and config.global_defs.vrrp_process_name == "keepalived_vrrp"
    (warning,) = [str(d) for d in warnings(diagnostics)]
    assert "takes no argument: 'x' is ignored and process_names is on" in warning
    reference = keepalived_says(tmp_path, conf)
    if reference is not None:
        assert reference == (0, ""), reference
