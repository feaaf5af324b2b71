"""Take the README's screenshots of a running demo (make demo), in Debian's chromium.

.venv/bin/python tools/screenshots.py [http://127.0.0.1:8000]
"""

from __future__ import annotations

import sys
from pathlib import Path

from playwright.sync_api import sync_playwright

BASE = sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:8000"
OUT = Path(__file__).resolve().parent.parent / "docs" / "screenshots"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
]


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        page.goto(f"{BASE}/admin/login/")
        page.fill("#id_username", "demo-staff")
        page.fill("#id_password", "mastery-demo")
        page.click("input[type=submit]")
        page.goto(f"{BASE}/admin/competencies/competency/")
        page.screenshot(path=OUT / "admin-competency-tree.png", full_page=False)
        page.goto(f"{BASE}/admin/competencies/framework/import/case/")
        page.set_input_files(
            "input[type=file]", "competencies/data/sample_framework_what-standards-could-be.json"
        )
        page.locator("form:has(input[type=file]) [type=submit]").click()
        page.screenshot(path=OUT / "admin-case-import-preview.png", full_page=False)
        page.goto(f"{BASE}/admin/competencies/framework/")
        page.locator("#result_list tbody tr th a").first.click()
        page.goto(page.url.rstrip("/").removesuffix("/change") + "/history/")
        page.screenshot(path=OUT / "admin-framework-history.png", full_page=False)
        browser.close()


if __name__ == "__main__":
    main()
