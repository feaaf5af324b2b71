"""Browser tests: Playwright's sync API driving Debian's chromium against pytest-django's live server.

Tests here need ``@pytest.mark.django_db(transaction=True)``: the live server runs in a thread of
this process with its own database connection, so it only sees committed data. Screenshots go to
``tests/artifacts/`` (git-ignored); every page is checked with the vendored axe-core.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings

from tests.factories.roster import PASSWORD

CHROMIUM_PATH = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
]
ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"
AXE_PATH = max(
    (settings.BASE_DIR / "mastery" / "static" / "vendor").glob("axe-core-*/axe.min.js"),
    key=lambda path: [int(part) for part in re.findall(r"\d+", path.parent.name)],
)
BLOCKING_IMPACTS = ("serious", "critical")
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 375, "height": 740}


@pytest.fixture(scope="session")
def browser() -> Iterator:
    if not Path(CHROMIUM_PATH).exists():
        pytest.skip(
            f"Chromium not found at {CHROMIUM_PATH}: `apt-get install chromium`, or set CHROMIUM_PATH."
        )
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs its event loop on this thread, so Django sees "a running loop" and
    # refuses ORM calls from the test body (factories, assertions) as async-unsafe. The test code is
    # plain synchronous code; the live server handles requests in its own thread.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM_PATH, args=CHROMIUM_ARGS)
            yield browser
            browser.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


def _new_page(browser, live_server, viewport: dict[str, int]):
    # Reduced motion: Bootstrap then skips its fades, so screenshots never catch a dialog half-drawn.
    context = browser.new_context(
        base_url=live_server.url, viewport=viewport, locale="en-US", reduced_motion="reduce"
    )
    page = context.new_page()
    page.set_default_timeout(10_000)
    return context, page


@pytest.fixture
def page(browser, live_server) -> Iterator:
    """A fresh desktop-sized page (own cookies) on the live server."""
    context, page = _new_page(browser, live_server, DESKTOP)
    yield page
    context.close()


@pytest.fixture
def phone_page(browser, live_server) -> Iterator:
    """A fresh phone-sized page on the live server."""
    context, page = _new_page(browser, live_server, PHONE)
    yield page
    context.close()


def log_in(page, username: str, password: str = PASSWORD) -> None:
    """Sign in through the login page, as a person would."""
    page.goto("/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in", exact=True).click()
    page.wait_for_url(lambda url: "/accounts/login/" not in url)


def save_screenshot(page, name: str, *, full_page: bool = True) -> Path:
    """A PNG of the page in tests/artifacts/<name>.png (the CI keeps the folder as an artefact)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    if full_page:
        # From the top, so sticky bars sit where they belong in the full-length picture.
        page.evaluate("() => window.scrollTo(0, 0)")
    page.screenshot(path=str(path), full_page=full_page)
    return path


def assert_accessible(page, label: str = "") -> None:
    """Run axe-core on the page; fail on any serious or critical violation, printing each one."""
    # From the live server's static files, not inlined: the pages' CSP (script-src 'self') refuses an
    # inline script, and the pages must be checked under the policy they really run with.
    page.add_script_tag(
        url=f"/{settings.STATIC_URL.lstrip('/')}vendor/{AXE_PATH.parent.name}/{AXE_PATH.name}"
    )
    results = page.evaluate("async () => await window.axe.run(document, {resultTypes: ['violations']})")
    blocking = [rule for rule in results["violations"] if rule.get("impact") in BLOCKING_IMPACTS]
    if blocking:
        report = [
            {
                "rule": rule["id"],
                "impact": rule["impact"],
                "help": rule["help"],
                "nodes": [
                    {"target": node["target"], "summary": node.get("failureSummary", "")}
                    for node in rule["nodes"][:10]
                ],
            }
            for rule in blocking
        ]
        text = json.dumps(report, indent=2)
        print(f"axe-core violations on {label or page.url}:\n{text}")
        pytest.fail(f"{len(blocking)} serious/critical accessibility violation(s) on {label or page.url}")
