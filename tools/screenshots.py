"""Take the README's screenshots, in Debian's chromium, into docs/screenshots/.

    .venv/bin/python tools/screenshots.py [http://127.0.0.1:8000]   # from a running demo (make demo)
    .venv/bin/python tools/screenshots.py --from-artifacts [DIR]     # from the browser tests' pictures

From a demo: signs in as each demo login and photographs the admin (competency tree, a CASE import's
dry-run preview, a framework's history), the district overview, the teacher's section (the heatmap),
the student's path and a mastery check in progress (it starts one for demo-student, as the student would).

From the artefacts: copies what the browser tests saved under tests/artifacts/ (run
``pytest -m browser tests/browser`` first) to the README's names; a missing picture is named, with the
test that takes it, and nothing is copied.
"""

from __future__ import annotations

import re
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "screenshots"
ARTIFACTS = ROOT / "tests" / "artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
]
DEMO_PASSWORD = "mastery-demo"
SAMPLE_CASE = ROOT / "competencies" / "data" / "sample_framework_what-standards-could-be.json"

# README name -> (the browser test's artefact, the test that saves it).
FROM_ARTIFACTS = {
    "teacher-section.png": ("section-heatmap.png", "tests/browser/test_teacher_pages.py"),
    "student-path.png": ("student-path.png", "tests/browser/test_student_journey.py"),
    "student-attempt.png": ("student-attempt.png", "tests/browser/test_attempt_pages.py"),
    "student-result.png": ("student-result.png", "tests/browser/test_attempt_pages.py"),
    "staff-overview.png": ("staff-overview.png", "tests/browser/test_staff_pages.py"),
    "admin-case-import-preview.png": ("staff-case-import.png", "tests/browser/test_staff_pages.py"),
}


def from_artifacts(folder: Path) -> list[Path]:
    missing = [
        f"{artifact} (taken by {test})"
        for artifact, test in FROM_ARTIFACTS.values()
        if not (folder / artifact).is_file()
    ]
    if missing:
        raise SystemExit(f"Not in {folder}: " + "; ".join(missing) + ". Run the browser tests first.")
    OUT.mkdir(parents=True, exist_ok=True)
    written = []
    for name, (artifact, _) in FROM_ARTIFACTS.items():
        shutil.copyfile(folder / artifact, OUT / name)
        written.append(OUT / name)
    return written


def _log_in(page, base: str, username: str) -> None:
    page.context.clear_cookies()
    page.goto(f"{base}/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Sign in", exact=True).click()
    page.wait_for_url(lambda url: "/accounts/login/" not in url)


def _shoot(page, name: str, written: list[Path], *, full_page: bool = False) -> None:
    page.evaluate("() => window.scrollTo(0, 0)")
    path = OUT / name
    page.screenshot(path=str(path), full_page=full_page)
    written.append(path)


def from_demo(base: str) -> list[Path]:
    from playwright.sync_api import sync_playwright

    OUT.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1280, "height": 800}, reduced_motion="reduce")
        page = context.new_page()

        # District staff: the admin, then the district overview.
        _log_in(page, base, "demo-staff")
        page.goto(f"{base}/admin/competencies/competency/")
        _shoot(page, "admin-competency-tree.png", written)
        page.goto(f"{base}/admin/competencies/framework/import/case/")
        page.set_input_files("input[type=file]", str(SAMPLE_CASE))
        page.get_by_role("button", name="Check the file").click()
        _shoot(page, "admin-case-import-preview.png", written)
        page.goto(f"{base}/admin/competencies/framework/")
        page.locator("#result_list tbody tr th a").first.click()
        page.goto(page.url.rstrip("/").removesuffix("/change") + "/history/")
        _shoot(page, "admin-framework-history.png", written)
        page.goto(f"{base}/staff/")
        _shoot(page, "staff-overview.png", written)

        # The teacher: the first section's heatmap.
        _log_in(page, base, "demo-teacher")
        page.goto(f"{base}/teach/")
        page.locator("a[href^='/teach/sections/']").first.click()
        page.wait_for_url(re.compile(r"/teach/sections/\d+/$"))
        _shoot(page, "teacher-section.png", written)

        # The student: the path, then a mastery check in progress (the first one the gate opens).
        _log_in(page, base, "demo-student")
        page.goto(f"{base}/path/")
        _shoot(page, "student-path.png", written)
        links = page.eval_on_selector_all(
            "a[href^='/assessments/']",
            "links => links.map(link => [link.getAttribute('href'), link.textContent.toLowerCase()])",
        )
        # A mastery check first, a practice only when no check is open.
        links.sort(key=lambda link: "mastery" not in link[1])
        for url in dict.fromkeys(href for href, _ in links):
            page.goto(base + url)
            start = page.locator("form[action$='/start/'] button[type=submit]:not([disabled])")
            if start.count():
                start.first.click()
                page.wait_for_url(re.compile(r"/attempts/\d+/$"))
                _shoot(page, "student-attempt.png", written)
                break
        else:
            print("No mastery check is open to demo-student: student-attempt.png not retaken.")
        browser.close()
    return written


def main(argv: list[str]) -> None:
    if argv and argv[0] == "--from-artifacts":
        written = from_artifacts(Path(argv[1]) if len(argv) > 1 else ARTIFACTS)
    else:
        written = from_demo((argv[0] if argv else "http://127.0.0.1:8000").rstrip("/"))
    for path in written:
        print(path.relative_to(ROOT))


if __name__ == "__main__":
    main(sys.argv[1:])
