"""The HTML report as a person sees it (`make check-report`): the smoke workflow runs, makes
its report with `snakemake --report`, and headless Chromium opens the page, shows a figure and
the verdict table, and takes screenshots (kept in results/report_check/ to look at).

Chromium is Debian's (/usr/bin/chromium), driven by playwright without a browser download."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.test_workflow import REPO, copy_workflow, snakemake

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",  # the closed network refuses its connections
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = REPO / "results" / "report_check"


@pytest.fixture(scope="module")
def report_html(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("report")
    copy_workflow(root)
    run = snakemake(root, "--configfile", "workflow/config/smoke.yaml")
    assert run.returncode == 0, run.stderr[-3000:]
    made = snakemake(
        root, "--configfile", "workflow/config/smoke.yaml", "--report", "results/report.html"
    )
    assert made.returncode == 0, made.stderr[-3000:]
    report = root / "results" / "report.html"
    assert report.stat().st_size > 100_000  # self-contained: the figures are inside
    return report


def test_report_shows_the_figures_and_the_verdict_table(report_html):
    playwright = pytest.importorskip("playwright.sync_api", reason="make check-report installs it")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(report_html.as_uri())
        page.get_by_text("Figures", exact=True).first.click()
        page.get_by_text("smoke", exact=True).first.click()
        page.locator("a[iconname=eye]").first.click()
        figure = page.locator("img[src^='data:image/png']")
        figure.first.wait_for()
        width = figure.first.evaluate("img => img.naturalWidth")
        assert width > 500, width  # a real learning-curve figure, drawn at 150 dpi
        page.screenshot(path=str(SCREENSHOTS / "figure.png"))

        page.get_by_text("Results", exact=True).first.click()
        page.get_by_text("Claims", exact=True).first.click()
        page.locator("a[iconname=eye]").first.click()
        page.locator("iframe").first.wait_for()
        frame = next(f for f in page.frames if "claims.html" in f.url)
        text = frame.inner_text("body")
        assert "The paper's claims" in text
        for claim in ["C1", "C2", "C3", "C4", "C5", "G1"]:
            assert claim in text
        assert "supported" in text and "inconclusive" in text
        page.screenshot(path=str(SCREENSHOTS / "claims.png"))
        browser.close()
