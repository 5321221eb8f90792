"""The statistics page as a pure service: which requests it answers, the auth challenge,
the exports, the HTML, and the admin form, with HAProxy 2.6's answers (each checked
against a running HAProxy 2.6.12 with the same `stats` settings)."""

from __future__ import annotations

import ast
import json
from dataclasses import replace
from pathlib import Path

import pytest

from poise.admin import commands, page, stats, stats_http, stats_json, stats_report
from poise.core.server import AdminState
from tests.unit.stats_page_world import ADMIN, CONFIG, OPS, STARTED, World, request

SRC = Path(__file__).resolve().parents[2] / "src" / "poise"
PURE = (
    "admin/page.py",
    "admin/prometheus.py",
    "admin/stats_http.py",
    "admin/stats_json.py",
    "admin/stats_report.py",
)
IO = {"asyncio", "socket", "ssl", "time", "os", "selectors", "subprocess", "uvloop"}


@pytest.mark.parametrize("name", PURE)
def test_the_page_s_modules_are_pure(name: str) -> None:
    tree = ast.parse((SRC / name).read_text())
    imported = {
        alias.name.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    } | {
        node.module.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0
    }
    assert not imported & IO


@pytest.fixture
def world() -> World:
    return World()


def answer(
    world: World,
    uri: str,
    *headers: tuple[str, str],
    method: str = "GET",
    src: str = "127.0.0.1",
    proxy: str = "stats",
) -> stats_http.Reply:
    req = request(uri, method, list(headers), src)
    settings = world.page(proxy)
    rest = stats_http.target(settings.uri, req)
    assert rest is not None
    return stats_http.answer(settings, world.view(), req, rest, stats_report.Rates())


def split(reply: stats_http.Reply) -> tuple[str, dict[str, str], bytes]:
    head, _, body = reply.response.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    return lines[0], headers, body


# -- which requests ---------------------------------------------------------------------


def test_the_page_answers_get_head_and_post_under_its_prefix() -> None:
    assert stats_http.target("/haproxy?stats", request("/haproxy?stats")) == ""
    assert stats_http.target("/haproxy?stats", request("/haproxy?stats;csv")) == ";csv"
    assert stats_http.target("/haproxy?stats", request("/haproxy?statsXYZ", "HEAD")) == "XYZ"
    assert stats_http.target("/", request("/anything", "POST")) == "anything"
    assert stats_http.target("/s", request("http://lb.example/s;json")) == ";json"
    assert stats_http.target("/haproxy?stats", request("/haproxy")) is None
    assert stats_http.target("/haproxy?stats", request("/haproxy?stats", "PUT")) is None


def test_options_are_found_anywhere_after_the_prefix(world: World) -> None:
    page_settings = world.page()
    parsed = stats_http.options(";up;csv;norefresh;st=DONE", page_settings)
    assert parsed == stats_http.Options("csv", True, False, True, "DONE")
    assert stats_http.options(";json;no-maint", page_settings).format == "json"
    assert stats_http.options(";typed", page_settings).format == "typed"
    assert stats_http.options(";st=WHAT", page_settings).result == "UNKN"
    assert stats_http.options(";st=DO", page_settings).result is None


# -- who may see it -----------------------------------------------------------------------


def test_without_the_password_the_page_is_a_401_with_the_realm(world: World) -> None:
    for headers in ([], [("Authorization", "Basic YWRtaW46d3Jvbmc=")], [("Authorization", "x")]):
        for uri in ("/haproxy?stats", "/haproxy?stats;csv", "/haproxy?stats;json"):
            reply = answer(world, uri, *headers)
            status, fields, body = split(reply)
            assert status == "HTTP/1.1 401 Unauthorized"
            assert fields["www-authenticate"] == 'Basic realm="Poise Stats"'
            assert fields["connection"] == "close" and reply.close
            assert b"web1" not in body and b"app" not in body


def test_the_401_is_haproxy_s(world: World) -> None:
    reply = answer(world, "/haproxy?stats")
    assert reply.response == (
        b"HTTP/1.1 401 Unauthorized\r\ncontent-length: 112\r\ncache-control: no-cache\r\n"
        b'content-type: text/html\r\nwww-authenticate: Basic realm="Poise Stats"\r\n'
        b"connection: close\r\n\r\n<html><body><h1>401 Unauthorized</h1>\nYou need a valid "
        b"user and password to access this content.\n</body></html>\n"
    )


def test_a_post_without_the_password_changes_nothing(world: World) -> None:
    req = request("/haproxy?stats", "POST", [("Content-Length", "28")])
    reply = stats_http.answer(
        world.page(),
        world.view(),
        req,
        "",
        stats_report.Rates(),
        body=b"s=web1&action=maint&b=%232",
    )
    assert reply.status == 401
    assert world.server("app", "web1").admin is AdminState.READY


def test_every_user_of_stats_auth_is_let_in(world: World) -> None:
    assert answer(world, "/haproxy?stats", ADMIN).status == 200
    assert answer(world, "/haproxy?stats", OPS).status == 200


def test_a_page_without_stats_auth_is_open() -> None:
    world = World(
        "defaults\n    mode http\n    timeout client 1s\nlisten s\n    bind :1\n    stats enable\n"
    )
    assert answer(world, "/haproxy?stats", proxy="s").status == 200


# -- the exports --------------------------------------------------------------------------


def test_csv_is_show_stat_with_the_page_s_rates(world: World) -> None:
    world.checked()
    status, fields, body = split(answer(world, "/haproxy?stats;csv", ADMIN))
    assert status == "HTTP/1.1 200 OK"
    assert fields["content-type"] == "text/plain"
    assert fields["refresh"] == "5"
    assert list(fields) == ["cache-control", "content-type", "refresh", "content-length"]
    lines = body.decode().splitlines()
    assert lines[0] == stats.HEADER
    web2 = next(line for line in lines if line.startswith("app,web2,"))
    columns = dict(zip(stats.COLUMNS, web2.split(","), strict=False))
    assert columns["status"] == "DOWN"
    assert columns["check_status"] == "L4CON"
    assert columns["last_chk"] == "Connection refused"
    assert columns["check_desc"] == "Layer4 connection problem"
    assert columns["rate"] == "0" and columns["rate_max"] == "0"
    assert columns["addr"] == "127.0.0.1:8002"  # stats show-legends


def test_without_rates_the_csv_is_the_runtime_api_s_show_stat() -> None:
    world = World(CONFIG.replace("    cookie SRV insert\n", "").replace(" cookie w1", ""))
    world.checked()
    view = world.view()
    assert stats_report.csv(stats_report.report(view)) == stats_report.show_stat(view)


def test_without_show_legends_no_address_is_shown() -> None:
    world = World(CONFIG.replace("    stats show-legends\n", ""))
    body = split(answer(world, "/haproxy?stats;csv", ADMIN))[2].decode()
    assert "127.0.0.1:8001" not in body
    assert "127.0.0.1:8001" in split(answer(World(), "/haproxy?stats;csv", ADMIN))[2].decode()


def test_up_and_no_maint_hide_servers(world: World) -> None:
    world.checked()
    world.server("app", "web3").admin = AdminState.MAINT
    body = split(answer(world, "/haproxy?stats;csv;up", ADMIN))[2].decode()
    assert "app,web1," in body and "app,web2," not in body and "app,web3," not in body
    body = split(answer(world, "/haproxy?stats;csv;no-maint", ADMIN))[2].decode()
    assert "app,web2," in body and "app,web3," not in body


def test_json_has_haproxy_s_field_tags(world: World) -> None:
    world.checked()
    _, fields, body = split(answer(world, "/haproxy?stats;json", ADMIN))
    assert fields["content-type"] == "application/json"
    rows = json.loads(body)
    assert [row[1]["value"]["value"] for row in rows] == [
        "FRONTEND",
        "web1",
        "web2",
        "web3",
        "BACKEND",
        "FRONTEND",
        "BACKEND",
        "FRONTEND",
        "t1",
        "BACKEND",
    ]
    web2 = {f["field"]["name"]: f for f in rows[2]}
    assert web2["pxname"] == {
        "objType": "Server",
        "proxyId": 2,
        "id": 2,
        "field": {"pos": 0, "name": "pxname"},
        "processNum": 1,
        "tags": {"origin": "Key", "nature": "Name", "scope": "Service"},
        "value": {"type": "str", "value": "app"},
    }
    assert web2["act"]["tags"] == {"origin": "Status", "nature": "Gauge", "scope": "Process"}
    assert web2["check_status"]["value"] == {"type": "str", "value": "L4CON"}
    backend = {f["field"]["name"]: f for f in rows[4]}
    assert backend["rate"]["tags"]["nature"] == "Gauge"  # a server's is a Rate
    assert web2["rate"]["tags"]["nature"] == "Rate"
    assert body.endswith(b"]]\n")


def test_typed_lines(world: World) -> None:
    body = split(answer(world, "/haproxy?stats;typed", ADMIN))[2].decode()
    lines = body.splitlines()
    assert lines[0] == "F.1.0.0.pxname.1:KNS:str:fe"
    assert "S.2.2.17.status.1:SGP:str:no check" not in lines
    assert "S.2.1.18.weight.1:MaP:u32:1" in lines


def test_every_column_has_tags() -> None:
    assert set(stats_json.TAGS) == set(stats.COLUMNS)


# -- the HTML page ------------------------------------------------------------------------


def test_the_page_shows_every_proxy_and_server(world: World) -> None:
    world.checked()
    world.server("app", "web3").admin = AdminState.DRAIN
    _, fields, body = split(answer(world, "/haproxy?stats", ADMIN))
    html = body.decode()
    assert fields["content-type"] == "text/html" and fields["refresh"] == "5"
    for proxy in ("fe", "app", "stats", "tcpapp"):
        assert f'id="px-{proxy}"' in html
    assert '<tr class="up" id="sv-app-web1">' in html
    assert '<tr class="down" id="sv-app-web2">' in html
    assert '<tr class="drain" id="sv-app-web3">' in html
    assert ">1m0s DOWN<" in html  # down since the clock read STARTED + 5
    assert ">L4OK in 1ms<" in html and ">L4CON in 0ms<" in html
    assert 'title="Layer4 connection problem: Connection refused"' in html
    assert ">20/20<" in html  # web2's weight
    assert "poise version 0.1.0, released 2026/11/21" in html
    assert "<b>uptime = </b>0d 0h01m05s" in html
    assert "<script" not in html


def test_the_admin_form_posts_what_haproxy_s_does(world: World) -> None:
    html = split(answer(world, "/haproxy?stats", ADMIN))[2].decode()
    assert '<form method="post" class="admin" id="form-app">' in html
    assert '<input type="checkbox" name="s" value="web1"' in html
    assert '<select name="action">' in html and '<option value="maint">' in html
    assert '<input type="hidden" name="b" value="#2">' in html
    # Not admin (the condition needs 127.0.0.1): no form.
    html = split(answer(world, "/haproxy?stats", ADMIN, src="10.0.0.1"))[2].decode()
    assert "<form" not in html and 'name="s"' not in html


def test_hide_version_show_node_and_desc() -> None:
    world = World()
    settings = world.page()
    hidden = replace(settings, hide_version=True, show_node="", show_desc="")
    html = page.render(world.view(), [], hidden, stats_http.Options(), admin=False)
    assert "0.1.0" not in html and "2026/11/21" not in html
    # As HAProxy 2.6 writes them: "on <node>: <description>".
    assert "<h2>Statistics Report for pid 4242 on lb1: the test balancer</h2>" in html
    assert "<title>Statistics Report for poise on lb1</title>" in html
    assert "<h1>poise</h1>" in html


def test_names_are_escaped() -> None:
    row: stats.Row = {"status": "<b>"}
    assert page.cell(row["status"]) == "<td>&lt;b&gt;</td>"


def test_the_result_of_an_action_is_shown(world: World) -> None:
    html = split(answer(world, "/haproxy?stats;st=DONE", ADMIN))[2].decode()
    assert "Action processed successfully." in html
    html = split(answer(world, "/haproxy?stats;st=PART", ADMIN))[2].decode()
    assert "Action partially processed." in html


def test_norefresh_drops_the_refresh_header(world: World) -> None:
    fields = split(answer(world, "/haproxy?stats;norefresh", ADMIN))[1]
    assert "refresh" not in fields


def test_head_has_no_body(world: World) -> None:
    reply = answer(world, "/haproxy?stats", ADMIN, method="HEAD")
    status, fields, body = split(reply)
    assert status == "HTTP/1.1 200 OK" and body == b"" and int(fields["content-length"]) > 0


# -- the admin form -----------------------------------------------------------------------


def post(world: World, form: str, uri: str = "/haproxy?stats", src: str = "127.0.0.1") -> str:
    req = request(uri, "POST", [ADMIN, ("Content-Length", str(len(form)))], src=src)
    rest = stats_http.target(world.page().uri, req)
    assert rest is not None
    reply = stats_http.answer(
        world.page(), world.view(), req, rest, stats_report.Rates(), body=form.encode()
    )
    status, fields, body = split(reply)
    assert status == "HTTP/1.1 303 See Other" and body == b""
    assert fields["content-type"] == "text/plain" and fields["content-length"] == "0"
    return fields["location"]


# The results HAProxy 2.6.12 gave to the same forms (backend `app` is #2 here, #3 there).
@pytest.mark.parametrize(
    ("form", "result"),
    [
        ("s=web1&action=maint&b=%232", "DONE"),
        ("action=maint&b=%232", "NONE"),
        ("s=web1&action=bogus&b=%232", "ERRP"),
        ("s=web1&action=maint&b=%2399", "ERRP"),
        ("s=web1&action=drain&b=app", "DONE"),
        ("s=web1&s=nope&action=ready&b=%232", "PART"),
        ("s=nope&action=drain&b=%232", "ERRP"),
        ("s=web1&action=ready", "NONE"),
        ("b=%232&action=ready&s=web1", "DONE"),
        ("", "NONE"),
        ("s=web1&action=&b=%232", "ERRP"),
        ("s=web1&b=%232", "NONE"),
    ],
)
def test_admin_results_are_haproxy_s(world: World, form: str, result: str) -> None:
    assert post(world, form) == f"/haproxy?stats;st={result}"


def test_the_result_keeps_up_and_norefresh(world: World) -> None:
    form = "s=web1&action=ready&b=%232"
    assert post(world, form, "/haproxy?stats;up") == "/haproxy?stats;st=DONE;up"
    assert post(world, form, "/haproxy?stats;norefresh;up") == (
        "/haproxy?stats;st=DONE;up;norefresh"
    )


def test_admin_actions_change_the_model_as_set_server_does(world: World) -> None:
    assert post(world, "s=web1&s=web2&action=maint&b=%232") == "/haproxy?stats;st=DONE"
    assert world.server("app", "web1").admin is AdminState.MAINT
    assert world.server("app", "web2").admin is AdminState.MAINT
    assert world.server("app", "web1").last_change == world.view().now
    post(world, "s=web2&action=drain&b=%232")
    assert world.server("app", "web2").admin is AdminState.DRAIN
    post(world, "s=web1&s=web2&action=ready&b=%232")
    assert world.server("app", "web1").admin is AdminState.READY
    # The same states as the runtime API's own command gives.
    other = World()
    session = commands.Session(commands.Level.ADMIN)
    commands.execute("set server app/web2 state drain", session, other.view())
    post(world, "s=web2&action=drain&b=%232")
    assert world.server("app", "web2").admin is other.server("app", "web2").admin


def test_weights_go_through_set_server_weight(world: World) -> None:
    assert post(world, "s=web2&action=weight&weight=7&b=%232").endswith("st=DONE")
    assert world.server("app", "web2").weight == 7
    assert post(world, "s=web2&action=weight&weight=50%25&b=%232").endswith("st=DONE")
    assert world.server("app", "web2").weight == 10  # 50% of the initial 20
    assert post(world, "s=web2&action=weight&weight=300&b=%232").endswith("st=ERRP")
    assert post(world, "s=web2&action=weight&weight=x&b=%232").endswith("st=ERRP")
    assert post(world, "s=web2&action=weight&b=%232").endswith("st=ERRP")
    assert world.server("app", "web2").weight == 10


def test_a_post_without_stats_admin_is_denied(world: World) -> None:
    location = post(world, "s=web1&action=maint&b=%232", src="10.0.0.1")
    assert location == "/haproxy?stats;st=DENY"
    assert world.server("app", "web1").admin is AdminState.READY


def test_a_post_body_is_asked_for_then_bounded(world: World) -> None:
    settings, view = world.page(), world.view()
    req = request("/haproxy?stats", "POST", [ADMIN, ("Content-Length", "26")])
    assert stats_http.answer(settings, view, req, "", stats_report.Rates()).needs_body
    big = request("/haproxy?stats", "POST", [ADMIN, ("Content-Length", "100000")])
    reply = stats_http.answer(settings, view, big, "", stats_report.Rates())
    assert split(reply)[1]["location"] == "/haproxy?stats;st=EXCD" and reply.close
    chunked = request("/haproxy?stats", "POST", [ADMIN, ("Transfer-Encoding", "chunked")])
    reply = stats_http.answer(settings, view, chunked, "", stats_report.Rates())
    assert split(reply)[1]["location"] == "/haproxy?stats;st=IVAL" and reply.close


def test_a_form_with_an_escaped_name_reaches_no_other_server(world: World) -> None:
    assert post(world, "s=web1%20state%20ready&action=maint&b=%232").endswith("st=ERRP")
    assert world.server("app", "web1").admin is AdminState.READY


# -- rates ----------------------------------------------------------------------------------


def test_rates_are_per_second_with_their_maximum() -> None:
    meter = stats_report.RateMeter()
    key = ("F", "fe", "")
    meter.sample(STARTED, {key: 0})
    meter.sample(STARTED + 1, {key: 12})
    meter.sample(STARTED + 2, {key: 15})
    rates = meter.rates()
    assert rates.current[key] == 3 and rates.maximum[key] == 12
    meter.sample(STARTED + 4, {key: 25})  # a late reading: the average of two seconds
    assert meter.rates().current[key] == 5
