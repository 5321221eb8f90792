"""`program` sections (configuration.txt 3.7) as `haproxy -c` 2.6 reads them: the
command's words, `user`, `group`, `[no] option start-on-reload`, and HAProxy's messages
for what is wrong; the need for master-worker mode (need_master_worker)."""

from __future__ import annotations

from poise.config.haproxy import parse
from poise.config.haproxy_program import need_master_worker
from poise.config.model import Config, Where


def read(text: str) -> tuple[Config | None, list[str]]:
    config, found = parse([("p.cfg", text)], {})
    return config, [str(d) for d in found]


def test_a_program_section_is_read_with_haproxys_defaults() -> None:
    config, found = read(
        "global\n    master-worker\n"
        'program api\n    command /usr/bin/api --port 5555 "a b"\n'
        "    user nobody\n    group nogroup\n    no option start-on-reload\n"
        "program other\n    command sleep 10\n"
    )
    assert found == [] and config is not None
    api, other = config.programs
    assert api.command == ("/usr/bin/api", "--port", "5555", "a b")
    assert (api.user, api.group, api.start_on_reload) == ("nobody", "nogroup", False)
    assert api.user_where == Where("p.cfg", 5) and api.group_where == Where("p.cfg", 6)
    assert other.start_on_reload and other.user is None


def test_haproxys_messages_for_a_wrong_program_section() -> None:
    _, found = read(
        "program\nprogram a b\nprogram x\n    command\n    user\n    user root\n"
        "    user daemon\n    option foo\n    no option start-on-reload x\n    bogus\n"
        "program x\nprogram y\n"
    )
    assert found == [
        "p.cfg:1: error: 'program': expects an <id>",
        "p.cfg:2: error: 'program': unexpected argument 'b'",
        "p.cfg:3: error: 'program': The program section 'x' lacks a command to launch.",
        "p.cfg:4: error: 'command': 'command' expects a command with optional arguments "
        "separated in words.",
        "p.cfg:5: error: 'user': 'user' expects a user name.",
        "p.cfg:7: error: 'user': user/uid already specified.",
        "p.cfg:8: error: 'option': unknown option 'foo'.",
        "p.cfg:9: error: 'option': 'option' cannot handle unexpected argument 'x'.",
        "p.cfg:10: error: 'bogus': unknown keyword 'bogus' in 'program' section",
        "p.cfg:11: error: 'program': 'x' program section already exists in the configuration.",
        "p.cfg:12: error: 'program': The program section 'y' lacks a command to launch.",
    ]


def test_a_program_section_needs_master_worker_mode() -> None:
    config, found = read("program p\n    command /bin/true\n")
    assert found == [] and config is not None
    problems = [str(p) for p in need_master_worker(config, master_worker=False)]
    assert problems == [
        "p.cfg:1: error: 'program': Can't use a 'program' section without master worker "
        "mode ('master-worker' in global, or -W)."
    ]
    assert need_master_worker(config, master_worker=True) == []
