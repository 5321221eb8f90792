"""poise as a Debian server's administrator installs and runs it: the source distribution
carries its licence, manual, units, completions and examples; scripts/install makes a
self-contained /opt/poise-style environment whose command works; `python -m poise`; the
man page renders without a warning; the bash completion completes and the zsh one parses;
and poise called by HAProxy's or Keepalived's name, or with HAProxy's command line, reads
it as they do (Debian's unit files run the binary with exactly these flags)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from tests.dbservers import wait_port
from tests.support import free_port

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
POISE_SCRIPT = Path(sys.executable).parent / "poise"

pytestmark = pytest.mark.e2e

GOOD = """\
defaults
    mode http
    timeout connect 1s
    timeout client 5s
    timeout server 5s
frontend fe
    bind 127.0.0.1:{port}
    http-request return status 200 content-type text/plain string ok
"""
BAD = GOOD + "    option bogus\n"


def run(
    *argv: str | Path,
    timeout: float = 60,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(a) for a in argv],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env=env,
        cwd=cwd,
    )


def named(tmp: Path, name: str) -> Path:
    """The poise command installed under another program's name (a symlink, as an
    administrator would put it in place of /usr/sbin/haproxy)."""
    link = tmp / name
    link.symlink_to(POISE_SCRIPT)
    return link


def test_the_source_distribution_carries_what_a_packager_needs(tmp_path: Path) -> None:
    built = run(sys.executable, "-m", "build", "--sdist", "-o", tmp_path, ROOT, timeout=180)
    assert built.returncode == 0, built.stderr[-2000:]
    (sdist,) = tmp_path.glob("poise-*.tar.gz")
    with tarfile.open(sdist) as tar:
        names = {n.split("/", 1)[1] for n in tar.getnames() if "/" in n}
        info = tar.extractfile(f"{sdist.name.removesuffix('.tar.gz')}/PKG-INFO")
        assert info is not None
        metadata = info.read().decode()
    for wanted in (
        "LICENSE",
        "README.md",
        "docs/poise.1",
        "docs/vrrp.md",
        "contrib/systemd/poise.service",
        "contrib/systemd/poise-vrrp.service",
        "contrib/completion/poise.bash",
        "contrib/completion/_poise",
        "examples/haproxy.cfg",
        "examples/keepalived.conf",
        "scripts/install",
    ):
        assert wanted in names, wanted
    assert "License-Expression: MIT" in metadata or "License: MIT" in metadata
    assert "../shared" not in metadata  # the description is the README, and self-contained


def test_the_install_script_makes_a_working_self_contained_poise(tmp_path: Path) -> None:
    env = dict(
        os.environ,
        MANDIR=str(tmp_path / "man"),
        BASHDIR=str(tmp_path / "bash"),
        ZSHDIR=str(tmp_path / "zsh"),
    )
    env.pop("PYTHONPATH", None)  # the installed poise, not this checkout's
    prefix, bindir = tmp_path / "opt" / "poise", tmp_path / "bin"
    done = run(ROOT / "scripts" / "install", prefix, bindir, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    poise = bindir / "poise"
    assert poise.resolve() == (prefix / "bin" / "poise").resolve()
    config = tmp_path / "haproxy.cfg"
    config.write_text(GOOD.format(port=free_port()))
    checked = run(poise, "check", "-f", config, env=env)
    assert (checked.returncode, checked.stdout) == (0, "Configuration file is valid\n")
    module = run(prefix / "bin" / "python", "-m", "poise", "version", env=env)
    assert module.returncode == 0 and module.stdout.startswith("poise ")
    page = run("man", "-l", tmp_path / "man" / "poise.1", env=dict(env, MANPAGER="cat"))
    assert "poise vrrp" in page.stdout
    assert (tmp_path / "bash" / "poise").read_text().startswith("# bash completion for poise")


def test_the_man_page_renders_without_a_warning() -> None:
    rendered = run("groff", "-man", "-ww", "-z", ROOT / "docs" / "poise.1")
    assert rendered.returncode == 0 and rendered.stderr == ""


def complete(words: str) -> list[str]:
    """What bash offers after `words` (the last word being completed), as a user's Tab."""
    script = (
        f"source {ROOT / 'contrib' / 'completion' / 'poise.bash'}; "
        f"COMP_WORDS=({words}); COMP_CWORD=$(( ${{#COMP_WORDS[@]}} - 1 )); "
        "_poise; printf '%s\\n' \"${COMPREPLY[@]}\""
    )
    done = run("bash", "-c", script, cwd=EXAMPLES)
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


def test_bash_completes_commands_options_and_files() -> None:
    assert complete("poise ch") == ["check"]
    assert complete("poise v") == ["vrrp", "version"]
    assert {"-W", "-Ws", "-sf"} <= set(complete("poise run -"))
    assert complete("poise run -f hap") == ["haproxy.cfg"]
    assert complete("poise vrrp -f keep") == ["keepalived.conf"]


def test_the_zsh_completion_parses() -> None:
    if shutil.which("zsh") is None:
        pytest.fail("zsh is missing: `make debs` installs it")
    checked = run("zsh", "-n", ROOT / "contrib" / "completion" / "_poise")
    assert checked.returncode == 0, checked.stderr


@pytest.mark.parametrize("quiet", [True, False])
def test_haproxy_check_mode_answers_as_haproxy_does(tmp_path: Path, quiet: bool) -> None:
    """Debian's unit checks the file before each reload: `haproxy -Ws -f $CONFIG -c -q
    $EXTRAOPTS`. Same exit status as HAProxy 2.6's on a good and a bad file, and with -q
    the same silence."""
    haproxy = named(tmp_path, "haproxy")
    for text, status in ((GOOD, 0), (BAD, 1)):
        config = tmp_path / "haproxy.cfg"
        config.write_text(text.format(port=free_port()))
        flags: list[str | Path] = [
            "-Ws",
            "-f",
            config,
            "-c",
            *(["-q"] if quiet else []),
            "-S",
            tmp_path / "m.sock",
        ]
        ours, theirs = run(haproxy, *flags), run("/usr/sbin/haproxy", *flags)
        assert ours.returncode == theirs.returncode == status, (ours.stderr, theirs.stderr)
        if quiet:
            assert ours.stdout == ours.stderr == theirs.stdout == theirs.stderr == ""
        elif status:
            assert f"{config}:9: error: 'option'" in ours.stderr


def test_poise_with_haproxys_command_line_serves(tmp_path: Path) -> None:
    port = free_port()
    config = tmp_path / "haproxy.cfg"
    config.write_text(GOOD.format(port=port))
    pidfile = tmp_path / "poise.pid"
    proc = subprocess.Popen(
        [str(POISE_SCRIPT), "-Ws", "-f", str(config), "-p", str(pidfile)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        wait_port(port, proc, "poise -Ws")
        done = run("curl", "-s", f"http://127.0.0.1:{port}/")
        assert done.stdout == "ok"
        assert int(pidfile.read_text().split()[0]) == proc.pid  # the master's, as -Ws writes
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)


def test_an_unknown_haproxy_flag_is_named(tmp_path: Path) -> None:
    done = run(named(tmp_path, "haproxy"), "-f", "x.cfg", "-m", "100")
    assert done.returncode == 1
    assert "'-m'" in done.stderr and "Traceback" not in done.stderr


def test_poise_named_keepalived_reads_keepalived_s_command_line(tmp_path: Path) -> None:
    keepalived = named(tmp_path, "keepalived")
    good = run(keepalived, "-t", "-f", EXAMPLES / "keepalived.conf")
    assert good.returncode == 0, good.stderr
    bad = tmp_path / "keepalived.conf"
    bad.write_text("vrrp_instance VI_1 {\n    state MASTER\n    virtual_router_id 300\n}\n")
    ours = run(keepalived, "-t", "-f", bad)
    theirs = run("/usr/sbin/keepalived", "-t", "-f", bad)
    assert ours.returncode == theirs.returncode == 5, (ours.stderr, theirs.stderr)


def test_python_dash_m_poise() -> None:
    done = run(sys.executable, "-m", "poise", "version")
    assert done.returncode == 0 and done.stdout.startswith("poise ")
