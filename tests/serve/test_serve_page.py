"""The page at / in a real browser: Debian's Chromium driven by Playwright (no `playwright install`)."""

from __future__ import annotations

import io
import shutil
import zipfile
from pathlib import Path

import httpx
import pytest
from serve_helpers import Server

from unetpp.model.cards import shipped_cards

sync_api = pytest.importorskip("playwright.sync_api", reason="the page test needs playwright (the dev extra)")


def _chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        pytest.skip("no chromium on PATH: `apt-get install -y chromium` (.ci/run installs it)")
    return path


def test_the_page_segments_two_images_and_downloads_the_zip(server: Server, images: list[Path],
                                                           tmp_path: Path) -> None:
    chosen = images[:2]
    with server.client() as c:
        api = {p.name: c.post("/v1/segment", files={"file": (p.name, p.read_bytes())}).json()["nuclei"]
               for p in chosen}
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=_chromium(), args=["--no-sandbox"])
        try:
            page = browser.new_page(accept_downloads=True, viewport={"width": 1200, "height": 900})
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(server.url + "/")
            assert "enter the token" in page.locator("#model").inner_text(timeout=10_000)
            page.fill("#token", server.token)
            page.dispatch_event("#token", "change")
            page.wait_for_function("document.getElementById('model').textContent.includes('sha256')",
                                   timeout=10_000)
            footer = page.locator("#model").inner_text()  # the served model's own figures, from its card
            assert shipped_cards()["instance"]["summary"] in footer and "undefined" not in footer, footer
            page.set_input_files("#files", [str(x) for x in chosen])
            page.wait_for_selector("body[data-done='1']", timeout=60_000)
            cards = page.locator("article.card")
            assert cards.count() == 2
            for i in range(2):
                card = cards.nth(i)
                name = card.get_attribute("data-name")
                assert int(card.get_attribute("data-nuclei")) == api[name]
                assert card.locator(".count").inner_text() == f"{api[name]} nuclei"
                assert card.locator("img.overlay").evaluate("img => img.complete && img.naturalWidth") > 0
                assert card.locator("table tr").count() == api[name] + 1
            assert page.locator("#status").inner_text() == "2 of 2 image(s) segmented"
            assert page.evaluate("sessionStorage.getItem('unetpp-token')") == server.token
            page.screenshot(path=str(tmp_path / "page.png"), full_page=True)
            with page.expect_download(timeout=60_000) as dl:
                page.click("#zip")
            target = tmp_path / "results.zip"
            dl.value.save_as(target)
            assert not errors, errors
        finally:
            browser.close()
    zf = zipfile.ZipFile(io.BytesIO(target.read_bytes()))
    names = set(zf.namelist())
    for x in chosen:
        assert {f"{x.stem}_labels.png", f"{x.stem}_mask.png", f"{x.stem}_overlay.png", f"{x.stem}_nuclei.csv"} <= names
    counts = dict(line.split(",")[0::4] for line in zf.read("counts.csv").decode().splitlines()[1:])
    assert {k + ".png": int(v) for k, v in counts.items()} == api
    assert httpx.get(server.url + "/v1/health").status_code == 200
