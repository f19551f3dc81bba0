"""The HTML report in a real browser: headless Chromium renders the demo's report.

Chromium loads the saved page from a ``file://`` URL, once to dump the DOM it built
(``--dump-dom``) and once to take a screenshot. The DOM must show every check's status,
the score and the figures; the failing check's figure must be on screen without a click
(measured by a probe script in a copy of the page, then found in the screenshot's pixels).
The screenshots are kept as CI artifacts under ``$MLCHECKS_ARTIFACTS`` (default
``build/screenshots``). To render them by hand::

    MLCHECKS_ARTIFACTS=build/screenshots pytest tests/report/test_browser.py

The test needs the ``chromium`` executable (Debian: ``apt-get install chromium``) and skips
without it; CI installs it and fails on skipped tests.
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest

from mlchecks import SuiteResult
from mlchecks.demo.suite import build_suite

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]

#: The demo runs rendered: the healthy system and one planted fault.
CASES = {"healthy": None, "slice_regression": "slice_regression"}

#: The demo checks that have built-in figures.
FIGURE_CHECKS = (
    "reproducibility",
    "loss_decreases",
    "checkpoint_restore",
    "pipeline",
    "quality",
    "single_batch",
    "canary",
    "rollback",
)

WINDOW = (1280, 2400)

FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--force-device-scale-factor=1",
)

#: Added to a copy of the page: where each check's first figure is laid out, whether the
#: browser renders it (``checkVisibility``: false inside a closed <details>) and how many
#: closed <details> hold it, as JSON in the DOM.
PROBE = """
<script>
const found = {};
for (const card of document.querySelectorAll("details.mlc-check")) {
  const name = card.querySelector("summary strong").textContent;
  const svg = card.querySelector("figure.mlc-fig svg");
  if (!svg) continue;
  const box = svg.getBoundingClientRect();
  let closed = 0;
  for (let node = svg.parentElement; node; node = node.parentElement) {
    if (node.tagName === "DETAILS" && !node.open) closed += 1;
  }
  found[name] = {x: box.x + scrollX, y: box.y + scrollY, width: box.width,
                 height: box.height, closed: closed, visible: svg.checkVisibility()};
}
const out = document.createElement("pre");
out.id = "mlc-probe";
out.textContent = JSON.stringify(found);
document.body.append(out);
</script>
"""

#: Okabe and Ito's vermillion, the colour of a failing slice in the quality figure.
VERMILLION = (0xD5, 0x5E, 0x00)


def artifacts() -> Path:
    """Where screenshots go: ``$MLCHECKS_ARTIFACTS`` or ``build/screenshots``."""
    return Path(os.environ.get("MLCHECKS_ARTIFACTS") or ROOT / "build" / "screenshots")


def run_chromium(chromium: str, scratch: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run headless Chromium with a throwaway profile and home directory."""
    scratch.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "HOME": str(scratch)}
    command = [chromium, *FLAGS, f"--user-data-dir={scratch / 'profile'}", *args]
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=180, check=False, env=env
    )
    assert 0 == done.returncode, f"{' '.join(command)}\n{done.stderr[-3000:]}"
    return done


def png_size(path: Path) -> tuple[int, int]:
    """Width and height from a PNG's IHDR chunk."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def sections(dom: str) -> dict[str, str]:
    """Each check's section of the rendered DOM, by the check's (escaped) name."""
    parts = re.split(r'(?=<details class="mlc-check )', dom)[1:]
    found = {}
    for part in parts:
        name = re.search(r"<strong>(.*?)</strong>", part)
        assert name is not None, part[:300]
        found[name.group(1)] = part
    return found


@pytest.fixture(scope="module")
def chromium() -> str:
    path = shutil.which("chromium")
    if path is None:
        pytest.skip("chromium is not installed (Debian: apt-get install chromium)")
    return path


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[SuiteResult, Path]]:
    """The demo's suite result and its saved HTML report, per case."""
    folder = tmp_path_factory.mktemp("reports")
    out = {}
    for case, fault in CASES.items():
        result = build_suite(fault=fault, seed=0).run(progress=False)
        out[case] = (result, result.save(folder / f"{case}.html"))
    return out


class TestReportInChromium:
    @pytest.mark.parametrize("case", list(CASES))
    def test_dom_shows_statuses_score_and_figures(
        self,
        case: str,
        chromium: str,
        reports: dict[str, tuple[SuiteResult, Path]],
        tmp_path: Path,
    ) -> None:
        """The DOM Chromium builds has every check's status, the score and the figures."""
        result, page = reports[case]
        dom = run_chromium(chromium, tmp_path, "--dump-dom", page.as_uri()).stdout
        assert dom.rstrip().endswith("</body></html>"), dom[-500:]
        label = result.status.label
        assert re.search(rf'<h2><span class="mlc-badge mlc-\w+">{label}</span> mlchecks suite', dom)
        score = result.score
        assert f"ML Test Score (infrastructure): {score.total:g} / {score.maximum:g}" in dom
        found = sections(dom)
        assert {html.escape(r.check) for r in result} == set(found)
        for r in result:
            section = found[html.escape(r.check)]
            summary = section[: section.index("</summary>")]
            assert f'<span class="mlc-badge mlc-{r.status.value}">{r.status.label}</span>' in (
                summary
            ), r.check
            if r.status.passed:
                assert section.startswith(f'<details class="mlc-check mlc-s-{r.status.value}">')
            else:
                assert section.startswith(
                    f'<details class="mlc-check mlc-s-{r.status.value}" open="">'
                )
        for name in FIGURE_CHECKS:
            section = found[name]
            assert "<svg" in section, f"no figure in the {name} section"
            assert "<figcaption>" in section
            assert "could not be drawn" not in section
        assert "install <code>mlchecks-infra[plot]</code>" not in dom

    def test_failing_figure_shows_without_a_click(
        self,
        chromium: str,
        reports: dict[str, tuple[SuiteResult, Path]],
        tmp_path: Path,
    ) -> None:
        """The failing check's figure is laid out on the page, in no closed <details>, and
        its pixels in the screenshot are drawn; a passing check's figure stays folded."""
        result, page = reports["slice_regression"]
        width, height = WINDOW
        window = f"--window-size={width},{height}"
        probe = tmp_path / "probe.html"
        text = page.read_text(encoding="utf-8")
        probe.write_text(text.replace("</body>", PROBE + "</body>"), encoding="utf-8")
        dom = run_chromium(chromium, tmp_path / "dom", window, "--dump-dom", probe.as_uri())
        found = re.search(r'<pre id="mlc-probe">(.*?)</pre>', dom.stdout, re.S)
        assert found is not None, dom.stdout[-2000:]
        boxes = json.loads(html.unescape(found.group(1)))
        assert set(FIGURE_CHECKS) == set(boxes)
        failing = [r.check for r in result if not r.status.passed]
        assert ["quality"] == failing
        box = boxes["quality"]
        assert 0 == box["closed"], box
        assert box["visible"], box
        assert box["width"] > 300, box
        assert box["height"] > 150, box
        assert box["y"] + box["height"] <= height, f"the figure is below the window: {box}"
        for name in FIGURE_CHECKS:
            if name not in failing:
                assert boxes[name]["closed"] >= 1, name
                assert not boxes[name]["visible"], name

        from PIL import Image  # matplotlib's dependency: the figures need both

        shot = artifacts() / "report-slice_regression-first-screen.png"
        shot.parent.mkdir(parents=True, exist_ok=True)
        shot.unlink(missing_ok=True)
        run_chromium(
            chromium,
            tmp_path / "shot",
            f"--screenshot={shot}",
            window,
            "--hide-scrollbars",
            page.as_uri(),
        )
        left, top = round(box["x"]), round(box["y"])
        crop = (left, top, left + round(box["width"]), top + round(box["height"]))
        with Image.open(shot) as image:
            figure = image.convert("RGB").crop(crop)
        figure.save(artifacts() / "report-slice_regression-failing-figure.png")
        pixels = np.asarray(figure, dtype=np.int32).reshape(-1, 3)
        inked = int((pixels.sum(axis=1) < 600).sum())
        assert inked > 0.02 * len(pixels), "the figure's area is blank in the screenshot"
        near = int((np.abs(pixels - np.array(VERMILLION)).max(axis=1) < 40).sum())
        assert near > 50, "the failing slice (vermillion) is not drawn in the screenshot"

    def test_failing_check_is_the_fault(self, reports: dict[str, tuple[SuiteResult, Path]]) -> None:
        """The failing case fails exactly the check its fault targets."""
        result, _ = reports["slice_regression"]
        assert ["quality"] == [r.check for r in result if not r.status.passed]

    @pytest.mark.parametrize("case", list(CASES))
    def test_screenshot(
        self,
        case: str,
        chromium: str,
        reports: dict[str, tuple[SuiteResult, Path]],
        tmp_path: Path,
    ) -> None:
        """A full-window screenshot of the report is saved as an artifact."""
        _, page = reports[case]
        target = artifacts() / f"report-{case}.png"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.unlink(missing_ok=True)
        width, height = WINDOW
        run_chromium(
            chromium,
            tmp_path,
            f"--screenshot={target}",
            f"--window-size={width},{height}",
            "--hide-scrollbars",
            page.as_uri(),
        )
        assert WINDOW == png_size(target)
        assert target.stat().st_size > 20_000, "the screenshot looks blank"
