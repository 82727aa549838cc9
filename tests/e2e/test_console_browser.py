"""The dashboard in a real browser (Debian's Chromium driven by Playwright) against a live
NVFlare POC federation: sign-in, the matrix with every site, a receipt verified through the
page's button and downloaded, a tampered site turning red without a reload, and a
screenshot of every page in the artifact folder (CCATTEST_ARTIFACTS, default
.artifacts/console)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from ccattest.console.server import ConsoleServer, free_port
from ccattest.nvflare.poc import PocFederation, wait_for
from ccattest.record.receipt import verify_receipt
from tests.e2e.test_poc import _registered, _rounds, _run_job_id, _tamper

ROUND_SECONDS = 3  # PocFederation.configure's default interval
POLL_SECONDS = 2  # app.js's POLL_MS
ARTIFACTS = Path(os.environ.get("CCATTEST_ARTIFACTS",
                                Path(__file__).resolve().parents[2] / ".artifacts" / "console"))


def _chromium() -> str:
    found = os.environ.get("CCATTEST_CHROMIUM") or shutil.which("chromium") or \
        shutil.which("chromium-browser")
    if found is None:
        message = "no Chromium: apt-get install chromium (.ci/run does)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return found


@pytest.fixture
def browser() -> Iterator[Any]:
    executable = _chromium()
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        # --no-sandbox: Chromium refuses its sandbox as root, which CI runs as.
        launched = playwright.chromium.launch(executable_path=executable,
                                              args=["--no-sandbox"])
        try:
            yield launched
        finally:
            launched.close()


def _shot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def test_the_dashboard_follows_a_live_federation(poc: PocFederation, browser: Any,
                                                 tmp_path: Path) -> None:
    from playwright.sync_api import expect

    poc.configure()
    poc.start()
    _registered(poc, "site-1", "site-2")
    _rounds(poc, 2)
    job, outcome = _run_job_id(poc, tmp_path)
    assert outcome == "FINISHED:COMPLETED"
    sites = ["server", *poc.clients]
    with ConsoleServer(poc.prod, port=free_port()) as console:
        page = browser.new_page(viewport={"width": 1280, "height": 720},
                                accept_downloads=True)
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))

        # Signed out: the login form; a wrong token is refused, the right one lets in.
        page.goto(console.url)
        expect(page.locator("#token")).to_be_visible()
        _shot(page, "0-login")
        page.fill("#token", "not-the-token-" + "x" * 30)
        page.click("button[type=submit]")
        expect(page.locator(".error")).to_contain_text("not this console's token")
        page.fill("#token", console.token)
        page.click("button[type=submit]")

        # The matrix: every site, each judging the others, all trusted.
        expect(page.locator("#matrix")).to_be_visible()
        for site in sites:
            expect(page.locator(f"#matrix th >> text='{site}'").first).to_be_visible()
        for verifier in sites:
            for peer in sites:
                if peer != verifier:
                    cell = page.locator(f'td[data-verifier="{verifier}"][data-peer="{peer}"]')
                    expect(cell).to_have_attribute("data-status", "affirming")
                    expect(cell).to_contain_text("trusted")  # a word, not colour alone
        _shot(page, "1-matrix")

        # Jobs: the receipt verifies through the button and downloads as a file.
        page.click("nav >> text=Jobs")
        row = page.locator("tr[data-receipt]").first
        row.locator("button[data-verify]").click()
        expect(row.locator("[data-verified]")).to_have_attribute("data-verified", "yes",
                                                                 timeout=15_000)
        expect(row).to_contain_text("cosigned by site-1, site-2")
        with page.expect_download() as download:
            row.locator("a[download]").click()
        token = Path(download.value.path()).read_text().strip()
        keys = (poc.prod / "server" / "local" / "cc" / "federation.jwks.json").read_text()
        import json

        report = verify_receipt(token, json.loads(keys), now=datetime.now(UTC))
        assert report.job == job and set(report.cosigners) == {"site-1", "site-2"}
        _shot(page, "2-jobs")

        page.click("nav >> text=Timeline")
        expect(page.locator("#timeline tbody tr").first).to_be_visible()
        page.select_option("select[name=kind]", "receipt")
        page.click("#filters button")
        expect(page.locator("#timeline tbody tr[data-kind=receipt]").first).to_be_visible()
        assert page.locator("#timeline tbody tr:not([data-kind=receipt])").count() == 0
        _shot(page, "3-timeline")

        page.goto(console.url + "sites/site-1")
        expect(page.locator("#reasons")).to_contain_text("Every check passed")
        expect(page.locator(".claims")).to_contain_text("measurement")
        _shot(page, "4-site")

        # Tamper site-2; the open matrix turns its cells red without a reload, within a
        # round of the tampering (the one in flight may have collected before it).
        page.goto(console.url)
        cell = page.locator('td[data-verifier="server"][data-peer="site-2"]')
        expect(cell).to_have_attribute("data-status", "affirming")
        page.evaluate("window.notReloaded = true")
        rounds_before = poc.status("server")["rounds"]
        _tamper(poc, "site-2")
        expect(cell).to_have_attribute("data-status", "contraindicated",
                                       timeout=(2 * ROUND_SECONDS + POLL_SECONDS + 10) * 1000)
        assert poc.status("server")["rounds"] <= rounds_before + 2
        assert page.evaluate("window.notReloaded") is True
        expect(cell).to_contain_text("rejected")
        expect(page.locator('td[data-verifier="site-1"][data-peer="site-2"]')
               ).to_have_attribute("data-status", "contraindicated", timeout=15_000)
        _shot(page, "5-matrix-tampered")
        page.goto(console.url + "sites/site-2")
        expect(page.locator("#reasons")).to_contain_text("measurement matches no reference")
        _shot(page, "6-site-rejected")
        assert errors == []
    wait_for(lambda: poc.alive("server"), 5, "the server to keep running")
