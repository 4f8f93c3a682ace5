"""The console in a real browser against a real collector: a device switched off turns red and its ticket
appears on the open board without a reload; an engineer responds, confirms and pulls logs with progress; a
viewer gets no action; a customer's user sees its own site only. Screenshots go to docs/screenshots/
with HEZO_SCREENSHOTS=docs."""

from __future__ import annotations

from typing import Any

import pytest

from tests.browser.conftest import Console, log_in, screenshot
from tests.support.room import CONTRACT
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration

BAR_ROW = "tr[data-ticket]:has-text('Rally Bar')"


def test_a_device_switched_off_turns_red_and_its_ticket_reaches_the_open_board(
    console: Console, page: Any
) -> None:
    log_in(page, console, "eng", "/board")
    overview = page.context.new_page()
    overview.goto(console.url("/"))
    for opened in (page, overview):
        opened.wait_for_selector(".live-state[data-state=live]")
        opened.evaluate("window.sameDocument = true")  # gone if the page reloads
    overview.click(f"details#timeline-{console.questions['test-site']} summary")

    console.room.control("rally-bar", on=False)

    page.wait_for_selector(BAR_ROW, timeout=60_000)
    row = page.locator(BAR_ROW)
    assert "critical" in row.inner_text()
    assert "Rally Bar: not responding" in row.inner_text()
    down = overview.locator("tr:has(td:text-is('rally-bar')) td.state")
    eventually("the device red on the overview", lambda: down.inner_text() == "down", timeout=30)
    # A live swap may replace the cell between two reads (a detached cell has no computed colour): read again.
    red = "rgb(207, 34, 46)"
    eventually("the cell drawn red", lambda: down.evaluate("cell => getComputedStyle(cell).color") == red)
    for opened in (page, overview):
        assert opened.evaluate("window.sameDocument") is True
    assert overview.locator(f"details#timeline-{console.questions['test-site']}").get_attribute("open") == ""
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")  # no sideways scroll
    # The board's first row is the ticket whose deadline runs out first: the new Critical's response.
    assert page.locator("tr[data-ticket]").first.inner_text() == row.inner_text()
    screenshot(page, "board")
    screenshot(overview, "overview")

    page.click(f"{BAR_ROW} a")
    page.wait_for_selector("h1:has-text('critical')")
    page.fill("form[aria-label=respond] input[name=text]", "Called the site: the bar is dark")
    page.click("button[data-step=respond]")
    page.wait_for_selector(".timeline li:has-text('Called the site: the bar is dark')")
    page.click("button[data-step=confirm]")
    page.wait_for_selector("#status:has-text('confirmed')")
    assert page.locator("button[data-step=ship]").count() == 1

    page.click("button[data-command=collect-logs]")
    progress = page.locator("[data-progress] progress")
    # The bundle can be stored a moment before the agent's last reply: wait for the command to be done.
    page.wait_for_selector(
        "[data-progress] .status:text-matches('^done') a[href$='/download']", timeout=90_000
    )
    assert progress.evaluate("bar => bar.value") == 1
    screenshot(page, "ticket")

    page.goto(console.url("/fleet"))
    assert page.locator("tr[data-site=test-site] td.state-down").inner_text() == "1"
    screenshot(page, "fleet")
    page.goto(console.url("/devices/test-site/room-1/rally-bar"))
    page.wait_for_selector("h1 .state-down")
    assert page.locator("button[data-command]").count() == 2
    screenshot(page, "device")


def test_a_viewer_sees_tickets_without_any_action(console: Console, page: Any) -> None:
    number = console.questions["test-site"]
    log_in(page, console, "vic", f"/tickets/{number}")
    page.wait_for_selector("h1:has-text('low')")
    page.keyboard.press("Tab")  # the keyboard's first stop skips the menu to the content
    assert page.evaluate("document.activeElement.textContent") == "Skip to the content"
    page.keyboard.press("Enter")
    assert page.evaluate("location.hash") == "#main"
    assert page.locator("#timeline li").count() >= 1
    assert page.locator("button[data-step], button[data-command], form[data-api]").count() == 0
    page.goto(console.url("/board"))
    assert page.locator(f"tr[data-ticket='{number}']").count() == 1


def test_a_customers_user_sees_only_its_own_site(console: Console, page: Any) -> None:
    log_in(page, console, "acme", "/board")
    numbers = page.locator("tr[data-ticket]").evaluate_all("rows => rows.map(r => r.dataset.ticket)")
    assert console.questions["test-site"] in numbers
    assert console.questions["other-site"] not in numbers
    assert page.locator("select[name=site] option").all_inner_texts() == ["any", "test-site"]
    assert page.locator("select[name=customer]").count() == 0
    gone = page.goto(console.url(f"/tickets/{console.questions['other-site']}"))
    assert gone is not None
    assert gone.status == 404

    page.goto(console.url("/portal"))
    page.select_option("select[name=device]", "test-site/room-1/rally-bar")
    assert page.input_value("#contract") == CONTRACT
    assert page.input_value("#serial") != ""
    page.check("input[name=priority][value=low]")
    page.fill("textarea[name=summary]", "How do we share a laptop screen in Room 101?")
    screenshot(page, "portal")
    page.click("form[data-api='/portal/tickets'] button[type=submit]")
    page.wait_for_url("**/tickets/HZ-*")
    assert "How do we share a laptop screen" in page.locator("h1").inner_text()

    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(console.url("/board"))
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    screenshot(page, "board-phone")
