"""The report in a real headless browser (Debian's chromium through Playwright): every section shows a chart
that decoded and has ink on it."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.unit.decisions.synthetic import START, fill
from triage.data.sources import load_examples
from triage.decisions.analytics import Period
from triage.decisions.drift import DriftReference
from triage.decisions.report import SECTIONS, write_report
from triage.decisions.store import DecisionStore
from triage.models.base import Classifier
from triage.taxonomy import Policy

pytestmark = pytest.mark.integration
CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]

# Share of the chart's pixels that are not (near) white, read back through a canvas.
INK = """img => {
  const c = document.createElement('canvas');
  c.width = img.naturalWidth; c.height = img.naturalHeight;
  const g = c.getContext('2d'); g.drawImage(img, 0, 0);
  const d = g.getImageData(0, 0, c.width, c.height).data;
  let ink = 0;
  for (let i = 0; i < d.length; i += 4) if (d[i] < 200 || d[i + 1] < 200 || d[i + 2] < 200) ink++;
  return {w: img.naturalWidth, h: img.naturalHeight, ink: ink / (d.length / 4)};
}"""


def _chromium() -> Path:
    if not CHROMIUM.exists() and os.geteuid() == 0 and shutil.which("apt-get"):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], env=env, capture_output=True, check=False, timeout=600)
        subprocess.run(["apt-get", "install", "-y", "-qq", "chromium"], env=env, capture_output=True, check=False,
                       timeout=1200)
    if not CHROMIUM.exists():
        message = "the report browser test needs Debian's chromium at /usr/bin/chromium (apt-get install chromium)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return CHROMIUM


def test_every_section_has_a_chart_in_a_real_browser(tmp_path: Path, policy: Policy,
                                                      tiny_classifier: Classifier) -> None:
    chromium = _chromium()
    from playwright.sync_api import sync_playwright

    store = DecisionStore(f"sqlite:///{tmp_path / 'd.db'}")
    store.migrate()
    until = fill(store, policy, n=900, weeks=3)
    texts = [e.text for e in load_examples()]
    ref = DriftReference.build("triage/7", tiny_classifier.card.categories, texts,
                               tiny_classifier.predict(texts).categories)
    page_path = write_report(store, Period(START, until), policy, tmp_path / "report", reference=ref)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(chromium), headless=True, args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1100, "height": 900})
            page.goto(page_path.as_uri())
            assert page.locator("h1").inner_text() == "Escalation report"
            keys = [s.key for s in SECTIONS] + ["drift"]
            for key in keys:
                section = page.locator(f"section#{key}")
                assert section.count() == 1, key
                assert section.locator("h2").inner_text(), key
                img = section.locator("img.chart")
                assert img.count() == 1, f"{key}: no chart"
                img.scroll_into_view_if_needed()
                stats = img.evaluate(INK)
                assert stats["w"] > 300 and stats["h"] > 150, (key, stats)
                assert stats["ink"] > 0.02, (key, stats)  # axes alone are ~1%; bars and lines are more
                assert section.locator("table.data tbody tr").count() > 0, f"{key}: empty table"
            assert page.locator("section").count() == len(keys)
        finally:
            browser.close()
