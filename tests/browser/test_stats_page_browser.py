"""The stats page in a real browser: Debian's headless Chromium, driven through its
chromedriver by Selenium, loads the page of a running poise (real backends behind it)
with the stats credentials, finds every server and its state, ticks a server and puts it
in maintenance with the admin form, and sees the page (and the model, and `show stat`)
change; then a change made with the runtime API shows up by the page's own refresh.

The browser runs with a fresh profile and everything that would reach the network off
(these machines are offline). A screenshot is left in /tmp for a human to look at.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest

from poise.admin import commands, stats
from poise.core.server import AdminState
from tests.io.harness import Poise, Stage
from tests.support import eventually, run

webdriver = pytest.importorskip("selenium.webdriver")
from selenium.common.exceptions import (  # noqa: E402
    NoSuchElementException,
    StaleElementReferenceException,
)
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.remote.webdriver import WebDriver  # noqa: E402
from selenium.webdriver.support.ui import Select  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
SCREENSHOT = Path("/tmp/poise-stats-page.png")
T = TypeVar("T")

pytestmark = pytest.mark.skipif(
    shutil.which(CHROMIUM) is None or shutil.which(CHROMEDRIVER) is None,
    reason="Debian's chromium and chromium-driver are not installed (make debs)",
)

CONFIG = """
defaults
    mode http
    timeout connect 1s
    timeout client 10s
    timeout server 5s
frontend fe
    bind 127.0.0.1:0
    default_backend app
backend app
    server web1 127.0.0.1:{a} check inter 100ms
    server web2 127.0.0.1:{b} check inter 100ms weight 20
    server web3 127.0.0.1:{c} check inter 100ms
listen stats
    bind 127.0.0.1:0
    stats enable
    stats uri /haproxy?stats
    stats refresh 1s
    stats auth admin:secret
    stats realm Poise\\ Stats
    stats admin if TRUE
    stats show-legends
"""


@pytest.fixture
def browser() -> Iterator[WebDriver]:
    profile = tempfile.mkdtemp(prefix="poise-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        "--window-size=1500,900",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(20)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


async def off_loop(call: Callable[[], T]) -> T:
    """The browser's calls block: they run on a thread while poise serves on the loop."""
    return await asyncio.to_thread(call)


async def until(check: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not await off_loop(check):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)


def row_class(driver: WebDriver, server: str) -> str:
    return str(driver.find_element(By.ID, f"sv-app-{server}").get_attribute("class"))


def refreshed_class(driver: WebDriver, server: str) -> str:
    """The row's class on a page that reloads itself: a row found just before a reload is
    gone by the time its class is asked ("" then: ask again)."""
    try:
        return row_class(driver, server)
    except (StaleElementReferenceException, NoSuchElementException):
        return ""


def view_of(poise: Poise) -> stats.View:
    """The running model as the runtime API's commands see it."""
    ctx = poise.ctx
    return stats.View(
        info=stats.AdminInfo(1, 0.0, 0.0, "test", "", "node"),
        frontends=ctx.frontends,
        backends=ctx.backends,
        maxconn=ctx.maxconn,
        actconn=ctx.actconn,
        cum_conns=ctx.cum_conns,
        stopping=ctx.stopping,
        now=ctx.loop.time(),
    )


def admin_command(poise: Poise, line: str) -> str:
    """A command of the runtime API at the admin level, and its answer."""
    answer = commands.execute(line, commands.Session(commands.Level.ADMIN), view_of(poise))
    return answer.text


def show_stat_status(poise: Poise, server: str) -> str:
    """The server's status in the runtime API's `show stat`, as a stats socket says it."""
    text = admin_command(poise, "show stat")
    line = next(row for row in text.splitlines() if row.startswith(f"app,{server},"))
    return dict(zip(stats.COLUMNS, line.split(","), strict=False))["status"]


def test_the_stats_page_in_chromium(browser: WebDriver) -> None:
    async def main() -> None:
        async with Stage() as stage:
            a, b = await stage.webapp("a"), await stage.webapp("b")
            gone = await stage.webapp("c")  # stopped below: web3 goes down
            poise = await stage.poise(CONFIG.format(a=a.port, b=b.port, c=gone.port))
            await gone.stop()
            app = poise.ctx.backends["app"]
            web2, web3 = app.server("web2"), app.server("web3")
            assert web2 is not None and web3 is not None
            await eventually(lambda: not web3.up, 5, "web3 down")
            base = f"http://admin:secret@127.0.0.1:{poise.port('stats')}/haproxy?stats"

            # The page, with the credentials, without its refresh while the form is used.
            await off_loop(lambda: browser.get(base + ";norefresh"))
            assert browser.title == "Statistics Report for poise"
            text = await off_loop(lambda: browser.find_element(By.TAG_NAME, "body").text)
            for name in ("fe", "app", "stats", "web1", "web2", "web3", "Frontend", "Backend"):
                assert name in text
            assert row_class(browser, "web1") == "up"
            assert row_class(browser, "web2") == "up"
            assert row_class(browser, "web3") == "down"
            state = browser.find_element(By.CSS_SELECTOR, "#sv-app-web3 td.state").text
            assert state.endswith("DOWN")

            # The admin form: tick web2, choose MAINT, Apply.
            def use_the_form() -> None:
                form = browser.find_element(By.ID, "form-app")
                form.find_element(By.CSS_SELECTOR, 'input[name="s"][value="web2"]').click()
                Select(form.find_element(By.NAME, "action")).select_by_value("maint")
                form.find_element(By.CSS_SELECTOR, 'button[type="submit"]').click()

            await off_loop(use_the_form)
            await until(lambda: ";st=DONE" in browser.current_url, "the action's result")
            message = await off_loop(lambda: browser.find_element(By.ID, "result").text)
            assert "Action processed successfully." in message
            assert row_class(browser, "web2") == "maint"
            # The model changed as `set server app/web2 state maint` changes it.
            assert web2.admin is AdminState.MAINT
            assert show_stat_status(poise, "web2") == "MAINT"
            await off_loop(lambda: browser.save_screenshot(str(SCREENSHOT)))

            # A change made elsewhere (the runtime API) shows by the page's own refresh.
            await off_loop(lambda: browser.get(base))
            assert row_class(browser, "web2") == "maint"
            assert admin_command(poise, "set server app/web2 state ready") == "\n"
            await until(lambda: refreshed_class(browser, "web2") == "up", "the page's refresh")

    run("asyncio", main, timeout=90)
