"""The HTML report of a real pipeline run, opened in headless Chromium (Debian's ``chromium``; issue 8).

clicks_demo runs at its smallest (generate -> ingest -> GBDT+LR -> evaluate) in the tests' session; its
report is then loaded by Chromium twice: with a small checking script added to a copy (``--dump-dom``: the
title, the tables, the steps, the key metrics and every image's natural size once loaded) and as it is
(``--screenshot``: the page is drawn, not blank, and its plots' colours are on it). Skips, saying why, when no
chromium is installed (``make test-report`` or ``scripts/chromium.sh`` installs it).
"""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

import numpy as np
import pytest
from matplotlib import image

from tests.chromium import chromium, chromium_binary
from tests.pipeline_runs import TINY_TRAIN, run_pipeline, tiny_definition

pytestmark = pytest.mark.browser

D = "2026-11-20"
MAX_SCREENSHOT_HEIGHT = 16000
# Added before </body> of a copy of the report: once everything loaded, what the test checks, as JSON in a <pre>.
CHECK = """<script>
window.addEventListener('load', () => {
  const texts = (selector) => [...document.querySelectorAll(selector)].map(e => e.textContent.trim());
  const check = {
    title: document.title, h1: texts('h1')[0], height: document.documentElement.scrollHeight,
    sections: [...document.querySelectorAll('section')].map(s => s.id),
    steps: texts('table.steps tbody tr td:nth-child(2)'), statuses: texts('table.steps tbody tr td:nth-child(4)'),
    key_columns: texts('table.key-metrics thead th'), key_subjects: texts('table.key-metrics tbody td:nth-child(2)'),
    metric_tables: document.querySelectorAll('table.metrics').length,
    samples: document.querySelectorAll('table.sample').length,
    images: [...document.images].map(i => ({alt: i.alt, complete: i.complete, width: i.naturalWidth,
                                            height: i.naturalHeight, shown: i.getBoundingClientRect().width})),
  };
  const out = document.createElement('pre');
  out.id = 'report-check';
  out.textContent = JSON.stringify(check);
  document.body.appendChild(out);
});
</script>"""


@pytest.fixture(scope="module")
def report(spark, tmp_path_factory) -> Path:
    chromium_binary()  # skip before running the pipeline
    tmp = tmp_path_factory.mktemp("report")
    definition = tiny_definition("clicks_demo", tmp, {"generate": {"size": 0.02}, "train": TINY_TRAIN})
    manifest, path = run_pipeline(spark, definition, tmp / "out", D)
    assert manifest["status"] == "succeeded"
    return path


@pytest.fixture(scope="module")
def rendered(report) -> dict:
    """What the checking script saw in Chromium."""
    page = report.with_name("check.html")
    page.write_text(report.read_text().replace("</body>", f"{CHECK}</body>"))
    proc = chromium("--dump-dom", page.as_uri())
    found = re.search(r'<pre id="report-check">(.*?)</pre>', proc.stdout, re.S)
    assert proc.returncode == 0 and found, proc.stderr[-3000:] + proc.stdout[-2000:]
    return json.loads(html.unescape(found.group(1)))


def test_report_renders_title_steps_and_metrics(rendered):
    assert rendered["title"] == f"clicks_demo {D}"
    assert rendered["h1"].startswith("Pipeline clicks_demo") and rendered["h1"].endswith("succeeded")
    assert rendered["steps"] == ["generate", "ingest_clicks", "train", "evaluate"]
    assert rendered["statuses"] == ["ran"] * 4
    assert rendered["sections"] == [f"step-{s}" for s in rendered["steps"]]
    assert rendered["key_columns"][:5] == ["step", "of", "roc_auc", "pr_auc", "log_loss"]
    assert rendered["key_subjects"] == ["test.gbdt_lr", "test.lr_only", "test.trees_only", "evaluation"]
    assert rendered["metric_tables"] >= 6 and rendered["samples"] >= 4


def test_every_plot_loads(rendered):
    """ROC and calibration of the training report, ROC, PR and calibration of the evaluation, all decoded."""
    images = rendered["images"]
    assert sorted(i["alt"] for i in images) == ["calibration.png", "calibration.png", "pr.png", "roc.png", "roc.png"]
    for img in images:
        assert img["complete"] and img["width"] > 100 and img["height"] > 100 and img["shown"] > 100, img


def test_screenshot_is_drawn_with_its_plots(report, rendered, tmp_path):
    png = tmp_path / "report.png"
    height = min(rendered["height"] + 100, MAX_SCREENSHOT_HEIGHT)
    proc = chromium(f"--screenshot={png}", f"--window-size=1280,{height}", report.as_uri())
    assert proc.returncode == 0 and png.is_file(), proc.stderr[-3000:]
    pixels = image.imread(str(png))[..., :3]
    assert pixels.shape[:2] == (height, 1280)
    ink = (pixels < 0.9).any(axis=2).mean()
    assert 0.02 < ink < 0.8, ink  # text, tables and plots on a white page
    red, green, blue = pixels[..., 0], pixels[..., 1], pixels[..., 2]
    plot_blue = (blue > 0.55) & (red < 0.35) & (green > 0.3) & (green < 0.6)  # matplotlib's first line, #1f77b4
    assert plot_blue.sum() > 500, plot_blue.sum()
    assert np.isclose(pixels[5, 5], 1.0).all()  # the page's white margin
