"""Billing staff in a real browser: the Temporal UI (2.54, served by the dev server) in headless
Debian chromium driven by Selenium. On an org's page, "More Actions -> Send an Update" sends
`request_downgrade` as pasted JSON: outside the downgrade window the refusal shows its message
alone, inside it the downgrade is scheduled and the page shows it.

UI_SCREENSHOTS=1 saves docs/ui-downgrade-refused.png and docs/ui-downgrade-scheduled.png. With
CI=true a missing chromium or chromedriver fails the test; elsewhere it is skipped."""

import asyncio
import importlib.util
import os
import shutil
import socket
import time
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
import pytest_asyncio
from temporalio.testing import WorkflowEnvironment

from domain.policy import Policy
from tests.support.binaries import temporal_cli_or_skip
from tests.devserver.support import GOOD, current_details, eventually
from tests.support.stack import Stack
from workers.runtime.temporal import DATA_CONVERTER
from workflows import search_attributes as sa

pytestmark = [pytest.mark.devserver, pytest.mark.postgres]

DOCS = Path(__file__).resolve().parents[2] / "docs"
STAFF = "rina@billing.test"
DOWNGRADE = '{"plan": "standard", "requested_by": "rina@billing.test", "reason": "the customer asked"}'


def _browser_or_skip() -> tuple[str, str]:
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if chromium and driver and importlib.util.find_spec("selenium"):
        return chromium, driver
    reason = "the browser test needs Debian's chromium and chromium-driver and the selenium package"
    if os.environ.get("CI") == "true":
        pytest.fail(reason)
    pytest.skip(reason)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest_asyncio.fixture(loop_scope="session")
async def ui_env():
    """A dev server of its own, with its Web UI on a free port."""
    port = _free_port()
    env = await WorkflowEnvironment.start_local(dev_server_existing_path=temporal_cli_or_skip(), ui=True, ui_port=port,
                                                search_attributes=list(sa.ALL), data_converter=DATA_CONVERTER,
                                                dev_server_log_level="error")
    env.ui_url = f"http://127.0.0.1:{port}"
    yield env
    await env.shutdown()


@pytest.fixture
def browser():
    chromium, driver_path = _browser_or_skip()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1000"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    yield driver
    driver.quit()


class Page:
    """The org's workflow page, as a person uses it."""

    def __init__(self, driver, url: str) -> None:
        self.driver = driver
        driver.get(url)

    def shown(self, css: str, text: str | None = None, timeout: float = 15.0):
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support.ui import WebDriverWait

        def find(_):
            for element in self.driver.find_elements(By.CSS_SELECTOR, css):
                if element.is_displayed() and (text is None or text in element.text):
                    return element
            return False
        return WebDriverWait(self.driver, timeout).until(find)

    def send_update(self, name: str, payload: str) -> str:
        """More Actions -> Send an Update, paste the JSON, submit. Returns the dialog's error
        text, or "" once the dialog closed (accepted)."""
        self.shown("button", "More Actions").click()
        self.shown("[data-testid=update-button]").click()
        self.shown("[data-testid=update-select-button]").click()
        self.shown("#update-select-select li", name).click()
        editor = self.shown("[data-testid=update-confirmation-modal] .cm-content")
        editor.click()
        editor.send_keys(payload)
        self.shown("[data-testid=update-id]").click()  # leave the editor: the UI reformats the JSON
        self.shown("[data-testid=update-confirmation-modal] button", "Submit").click()
        from selenium.webdriver.common.by import By
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            errors = [e.text for e in self.driver.find_elements(By.CSS_SELECTOR, "[data-testid=update-confirmation-modal] [role=alert]") if e.text.strip()]
            if errors:
                return errors[0]
            if not self.driver.find_elements(By.CSS_SELECTOR, "[data-testid=update-confirmation-modal][open]"):
                return ""
            time.sleep(0.2)
        raise AssertionError("the Send an Update dialog neither closed nor showed an error")

    def screenshot(self, name: str) -> None:
        if os.environ.get("UI_SCREENSHOTS") == "1":
            self.driver.save_screenshot(str(DOCS / name))


def in_browser(call, *args):
    """Selenium blocks: it runs beside the event loop, where the worker answers the UI's queries."""
    return asyncio.to_thread(call, *args)


async def test_a_downgrade_sent_from_the_temporal_ui(ui_env, browser, pg_db, catalog, smtp_sink):
    stack = Stack(env=ui_env, db=pg_db, catalog=catalog, policy=Policy(billing_staff=(STAFF,)),
                  smtp_port=smtp_sink.port, task_queue=f"tq-{uuid.uuid4().hex[:8]}")
    async with stack.worker():
        now = await stack.now()
        # Renewing in 8 to 11 days (too late to downgrade), and in 23 to 26 days (inside 15-30).
        late = await stack.create_org("late-" + uuid.uuid4().hex[:6], name="Late Renewals Ltd", plan="professional",
                                      cycle="monthly", card=GOOD, start=now - timedelta(days=20))
        ok = await stack.create_org("ok-" + uuid.uuid4().hex[:6], name="Acme Field Services", plan="professional",
                                    cycle="monthly", card=GOOD, start=now - timedelta(days=5))
        for org_id in (late, ok):
            await eventually(lambda: stack.handle(org_id).query("state"))

        page = await in_browser(Page, browser, f"{ui_env.ui_url}/namespaces/default/workflows/org-{late}")
        misspelt = await in_browser(page.send_update, "request_downgrade", DOWNGRADE.replace('"plan"', '"plann"'))
        assert misspelt == "unknown field 'plann' (fields: plan, licences, requested_by, reason)"
        await in_browser(browser.refresh)
        refusal = await in_browser(page.send_update, "request_downgrade", DOWNGRADE)
        renews = (await stack.state(late)).snapshot.renews_at
        days = (renews.date() - now.date()).days
        assert refusal == (f"downgrades are accepted only 15 to 30 days before the renewal date "
                           f"({renews:%Y-%m-%d}); it is {days} days away")  # the message alone: no stack trace
        await in_browser(page.screenshot, "ui-downgrade-refused.png")
        assert (await stack.state(late)).snapshot.scheduled.plan is None

        page = await in_browser(Page, browser, f"{ui_env.ui_url}/namespaces/default/workflows/org-{ok}")
        assert await in_browser(page.send_update, "request_downgrade", DOWNGRADE) == ""
        await in_browser(page.shown, "*", "Update successful")
        renews = (await stack.state(ok)).snapshot.renews_at
        assert (await stack.state(ok)).snapshot.scheduled.plan == "standard"
        assert "scheduled downgrade to standard takes effect" in await current_details(stack.handle(ok))
        scheduled = f"downgrade to standard on {renews:%Y-%m-%d}"
        described = await stack.handle(ok).describe()
        assert described.typed_search_attributes.get(sa.SCHEDULED_CHANGE) == scheduled
        await in_browser(browser.refresh)
        await in_browser(lambda: page.shown("a", "Search Attributes").click())
        await in_browser(page.shown, "*", scheduled)
        await in_browser(page.screenshot, "ui-downgrade-scheduled.png")
