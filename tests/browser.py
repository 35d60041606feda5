"""Headless Chromium for the digest's browser tests: found, or installed from Debian once.

Chromium cannot make its window narrower than 500 px, so a page is measured and
photographed inside an ``<iframe srcdoc>`` of the exact width: the iframe is the
viewport its media queries see, and being same-origin its document can be
measured by a small script whose result is written into the DOM that
``--dump-dom`` prints. Many pages are measured in one run (Chromium's start-up
is most of the cost). No DevTools client, no new dependency.
"""

from __future__ import annotations

import html
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from html.parser import HTMLParser
from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")
INSTALL = (
    ["apt-get", "update"],
    ["apt-get", "install", "-y", "--no-install-recommends", "chromium"],
)
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--hide-scrollbars",
)
#: Chromium's smallest window width; narrower viewports live in an iframe
MIN_WINDOW = 500
#: tall enough that no digest gets a vertical scrollbar while it is measured
MEASURE_HEIGHT = 20_000
TIMEOUT = 90
MEASURE_ID = "kindly-measure"

_FRAME = (
    '<iframe data-key="{key}" style="display:block;border:0;margin:0 0 8px 0;'
    'width:{width}px;height:{height}px" srcdoc="{doc}"></iframe>'
)
_PAGE = """<!DOCTYPE html><html><head><meta charset="utf-8"></head>
<body style="margin:0;background:#8a8f98">
{frames}
<script>
// the window's load event waits for every frame, wherever each one got to first
window.addEventListener("load", function () {{
  var results = {{}};
  document.querySelectorAll("iframe").forEach(function (frame) {{
    var doc = frame.contentDocument;
    results[frame.dataset.key] = {{
      scrollWidth: doc.documentElement.scrollWidth,
      viewport: frame.contentWindow.innerWidth,
      height: Math.ceil(doc.body.getBoundingClientRect().height),
      text: doc.body.innerText
    }};
  }});
  var out = document.createElement("pre");
  out.id = "{measure_id}";
  out.textContent = JSON.stringify(results);
  document.body.appendChild(out);
}});
</script></body></html>"""


class BrowserUnavailable(Exception):
    """Chromium is not installed and cannot be installed here; the reason says why."""


@dataclass(frozen=True, slots=True)
class Measurement:
    """What a page looks like at one viewport width."""

    width: int
    #: the document's full width: more than ``width`` means horizontal scrolling
    scroll_width: int
    height: int
    #: the visible text, as a reader sees it
    text: str

    @property
    def overflow(self) -> int:
        return max(0, self.scroll_width - self.width)


@cache
def chromium() -> Path:
    """The Chromium binary; installs Debian's package once (as root) when it is missing."""
    if CHROMIUM.exists():
        return CHROMIUM
    if os.geteuid() != 0:
        raise BrowserUnavailable(f"{CHROMIUM} is missing and installing it needs root")
    if shutil.which("apt-get") is None:
        raise BrowserUnavailable(f"{CHROMIUM} is missing and there is no apt-get to install it")
    for command in INSTALL:
        done = subprocess.run(command, capture_output=True, text=True, timeout=900, check=False)
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or ["no output"])[-1]
            raise BrowserUnavailable(f"`{' '.join(command)}` failed: {last}")
    if not CHROMIUM.exists():
        raise BrowserUnavailable(f"apt-get installed chromium but {CHROMIUM} is still missing")
    return CHROMIUM


def _run(args: list[str]) -> subprocess.CompletedProcess[str]:
    """One headless Chromium run with a fresh profile that is removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="kindly-chromium-") as profile:
        return subprocess.run(
            [str(chromium()), *FLAGS, f"--user-data-dir={profile}", *args],
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            check=False,
        )


def _framed(pages: Mapping[str, tuple[str, int]], height: int) -> str:
    frames = "\n".join(
        _FRAME.format(
            key=html.escape(key, quote=True),
            width=width,
            height=height,
            doc=html.escape(page, quote=True),
        )
        for key, (page, width) in pages.items()
    )
    return _PAGE.format(frames=frames, measure_id=MEASURE_ID)


def measure(pages: Mapping[str, tuple[str, int]], workdir: Path) -> dict[str, Measurement]:
    """Lay out each (page, viewport width), all in one Chromium run; results by key."""
    wrapper = workdir / "measure.html"
    wrapper.write_text(_framed(pages, MEASURE_HEIGHT), encoding="utf-8")
    widest = max(width for _, width in pages.values())
    done = _run([f"--window-size={max(widest, MIN_WINDOW)},800", "--dump-dom", wrapper.as_uri()])
    found = _measurements(done.stdout)
    if found.keys() != pages.keys():
        raise AssertionError(
            f"Chromium measured {sorted(found)} (exit {done.returncode}): {done.stderr}"
        )
    return found


def screenshot(page: str, width: int, height: int, target: Path) -> Path:
    """A PNG of the whole page in a viewport ``width`` px wide (grey beyond it)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    wrapper = target.with_suffix(".html")
    wrapper.write_text(_framed({target.stem: (page, width)}, height), encoding="utf-8")
    try:
        done = _run(
            [
                f"--window-size={max(width, MIN_WINDOW)},{height}",
                f"--screenshot={target}",
                wrapper.as_uri(),
            ]
        )
    finally:
        wrapper.unlink(missing_ok=True)
    if not target.exists():
        raise AssertionError(
            f"Chromium wrote no screenshot (exit {done.returncode}): {done.stderr}"
        )
    return target


def _last_lines(stderr: str) -> str:
    """Chromium's stderr without the D-Bus noise of a machine without a desktop session."""
    lines = [line for line in stderr.splitlines() if "dbus" not in line.lower()]
    return "\n".join(lines[-5:])


class _MeasureFinder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.inside = False
        self.found: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.inside = tag == "pre" and ("id", MEASURE_ID) in attrs

    def handle_endtag(self, tag: str) -> None:
        self.inside = False

    def handle_data(self, data: str) -> None:
        if self.inside:
            self.found.append(data)


def _measurements(dom: str) -> dict[str, Measurement]:
    finder = _MeasureFinder()
    finder.feed(dom)
    if not finder.found:
        return {}
    data = json.loads("".join(finder.found))
    return {
        key: Measurement(
            int(one["viewport"]), int(one["scrollWidth"]), int(one["height"]), str(one["text"])
        )
        for key, one in data.items()
    }
