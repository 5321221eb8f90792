"""Loading from disk (load.py, the shell): files, directories, unreadable files, user and
group names, and server name resolution. Real files in a temporary directory, real lookups
(`localhost` and the reserved `.invalid` domain, which never resolves)."""

from __future__ import annotations

import grp
import os
import pwd
from pathlib import Path

import pytest

from poise.config.diagnostics import Severity
from poise.config.haproxy import parse
from poise.config.model import Where
from poise.system.load import load_config, resolve_servers

GLOBAL = "global\n    maxconn 100\n"
DEFAULTS = "defaults\n    timeout connect 1s\n    timeout client 1s\n    timeout server 1s\n"
PROXIES = (
    "frontend fe\n    bind :8080\n    default_backend be\nbackend be\n    server a 127.0.0.1:80\n"
)


def write(path: Path, text: str) -> str:
    path.write_text(text)
    return str(path)


def test_several_files_in_order(tmp_path: Path) -> None:
    files = [
        write(tmp_path / "1.cfg", GLOBAL),
        write(tmp_path / "2.cfg", DEFAULTS),
        write(tmp_path / "3.cfg", PROXIES),
    ]
    config, diagnostics = load_config(files, {})
    assert config is not None, [str(d) for d in diagnostics]
    assert diagnostics == []
    assert config.files == tuple(files)
    assert config.global_.maxconn == 100
    assert config.proxy("fe") is not None and config.proxy("be") is not None


def test_a_directory_gives_its_cfg_files_in_name_order(tmp_path: Path) -> None:
    conf = tmp_path / "conf.d"
    conf.mkdir()
    write(conf / "20-proxies.cfg", PROXIES)
    write(conf / "10-defaults.cfg", DEFAULTS)
    write(conf / "00-global.cfg", GLOBAL)
    write(conf / "README", "not a configuration")
    (conf / "sub.cfg").mkdir()
    config, diagnostics = load_config([str(conf)], {})
    assert config is not None, [str(d) for d in diagnostics]
    assert [Path(f).name for f in config.files] == [
        "00-global.cfg",
        "10-defaults.cfg",
        "20-proxies.cfg",
    ]
    # The defaults of 10-defaults.cfg reached the proxies of 20-proxies.cfg.
    be = config.proxy("be")
    assert be is not None and be.timeouts.connect == 1000


def test_a_missing_file_is_an_error_naming_it(tmp_path: Path) -> None:
    good = write(tmp_path / "good.cfg", GLOBAL + DEFAULTS + PROXIES)
    missing = str(tmp_path / "missing.cfg")
    config, diagnostics = load_config([good, missing], {})
    assert config is None
    assert [str(d) for d in diagnostics] == [
        f"{missing}:0: error: cannot read '{missing}': No such file or directory"
    ]


def test_environment_defaults_to_the_process_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("POISE_TEST_NODE_NAME", "from-env")
    path = write(tmp_path / "env.cfg", 'global\n    node "${POISE_TEST_NODE_NAME}"\n')
    config, _ = load_config([path])
    assert config is not None and config.global_.node == "from-env"
    config, _ = load_config([path], {"POISE_TEST_NODE_NAME": "given"})
    assert config is not None and config.global_.node == "given"


def test_user_and_group_names_become_ids(tmp_path: Path) -> None:
    user = pwd.getpwuid(os.getuid())
    group = grp.getgrgid(os.getgid())
    path = write(
        tmp_path / "u.cfg", f"global\n    user {user.pw_name}\n    group {group.gr_name}\n"
    )
    config, diagnostics = load_config([path], {})
    assert config is not None, [str(d) for d in diagnostics]
    assert (config.global_.uid, config.global_.gid) == (user.pw_uid, group.gr_gid)


def test_an_unknown_user_is_an_error_at_its_line(tmp_path: Path) -> None:
    path = write(
        tmp_path / "u.cfg",
        "global\n    daemon\n    user no-such-user-poise\n    group no-such-group-poise\n",
    )
    config, diagnostics = load_config([path], {})
    assert config is None
    assert [(d.severity, d.where, d.keyword) for d in diagnostics] == [
        (Severity.ERROR, Where(path, 3), "user"),
        (Severity.ERROR, Where(path, 4), "group"),
    ]
    assert "unknown user 'no-such-user-poise'" in str(diagnostics[0])


def servers_config(*lines: str) -> str:
    return DEFAULTS + "backend be\n" + "".join(f"    {line}\n" for line in lines)


def test_resolve_servers() -> None:
    config, diagnostics = parse(
        [
            (
                "r.cfg",
                servers_config(
                    "server ip 10.1.2.3:80",
                    "server v6 [2001:db8::1]:80",
                    "server local localhost:8080",
                    "server sock /run/app.sock",
                ),
            )
        ],
        {},
    )
    assert config is not None, [str(d) for d in diagnostics]
    addresses, problems = resolve_servers(config)
    assert problems == []
    assert addresses == {
        ("be", "ip"): "10.1.2.3",
        ("be", "v6"): "2001:db8::1",
        ("be", "local"): "127.0.0.1",
    }


def test_an_unresolvable_server_is_an_error_at_its_line() -> None:
    config, _ = parse([("r.cfg", servers_config("server gone nonexistent.invalid:80"))], {})
    assert config is not None
    addresses, problems = resolve_servers(config)
    assert addresses == {}
    assert [str(p) for p in problems] == [
        "r.cfg:6: error: 'server': could not resolve address 'nonexistent.invalid' for server "
        "'be/gone'"
    ]


@pytest.mark.parametrize("name", ["haproxy.cfg"])
def test_the_seed_loads_from_disk(name: str) -> None:
    seed = Path(__file__).parents[2] / "examples" / name
    config, diagnostics = load_config([str(seed)], {})
    if config is None:  # only when the machine has no `haproxy` user (see `make debs`)
        assert [d.keyword for d in diagnostics if d.severity is Severity.ERROR] == ["user", "group"]
    else:
        assert config.global_.uid is not None and config.global_.gid is not None


def test_log_targets_and_nameservers_given_by_host_name_are_resolved_at_startup(
    tmp_path: Path,
) -> None:
    """HAProxy resolves them once while it reads the file: `log rsyslog:514 local0` in a
    container, `nameserver consul consul:8600`."""
    path = tmp_path / "names.cfg"
    path.write_text(
        "global\n    log localhost:5514 local0\n"
        "resolvers dns\n    nameserver local localhost:53\n"
        "defaults\n    log global\n    timeout connect 1s\n    timeout client 1s\n"
        "    timeout server 1s\n"
        "frontend fe\n    bind 127.0.0.1:8000\n    default_backend be\n"
        "backend be\n    server s 127.0.0.1:80\n"
    )
    config, diagnostics = load_config([str(path)], {})
    assert config is not None, [str(d) for d in diagnostics]
    loopback = ("127.0.0.1", "::1")
    assert config.global_.logs[0].address in loopback
    assert config.global_.logs[0].port == 5514
    assert all(proxy.logs[0].address in loopback for proxy in config.proxies)
    assert config.resolvers[0].nameservers[0].host in loopback
