"""`poise check -k FILE` and `poise vrrp -t`: the command line a user types to validate a
keepalived.conf (syntax problems stop before anything asks the system)."""

from __future__ import annotations

from pathlib import Path

import pytest

from poise.cli import main


def test_check_k_names_every_problem_and_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    conf = tmp_path / "keepalived.conf"
    conf.write_text("vrrp_instance VI_1 {\n    interfac eth0\n    strict_mode\n}\n")
    assert main(["check", "-k", str(conf)]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err == [
        f"{conf}:2: error: 'interfac': unknown keyword in vrrp_instance; did you mean 'interface'?",
        f"{conf}:3: error: 'strict_mode': this Keepalived keyword is not implemented yet in poise",
        f"{conf}:1: error: 'vrrp_instance': missing virtual_router_id",
        "Fatal errors found in configuration.",
    ]
    assert main(["vrrp", "-t", "-f", str(conf)]) == 5  # keepalived -t's status for errors


def test_check_needs_a_file(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check"]) == 2
    assert "-k FILE" in capsys.readouterr().err


def test_a_missing_file_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "-k", str(tmp_path / "nope.conf")]) == 1
    assert f"cannot read '{tmp_path}/nope.conf'" in capsys.readouterr().err
