"""The report in a real browser: headless Chromium (Debian's `chromium`) opens it from disk with no console
message and no request but the file itself, and lays out every chart with content; a full-page screenshot
is kept for a person to look at.

Chromium is driven over the DevTools protocol on a pipe (``--remote-debugging-pipe``: JSON messages ending
in NUL on fds 3 and 4), so no websocket client is needed.
"""

from __future__ import annotations

import base64
import json
import os
import select
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from llmft.report.build import write_report

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(CHROMIUM is None, reason="no chromium on PATH (Debian: apt-get install chromium)"),
]
WIDTH = 1280
CHARTS = """JSON.stringify([...document.querySelectorAll('svg.chart')].map(svg => {
  const box = svg.getBoundingClientRect();
  return {width: box.width, height: box.height, marks: svg.querySelectorAll('path, text, use').length};
}))"""


class Chromium:
    """A headless Chromium and one page of it."""

    def __init__(self) -> None:
        to_browser, self._write = os.pipe()
        self._read, from_browser = os.pipe()

        def fds() -> None:  # in the child: the pipe ends at the fds the protocol uses, inheritable
            a, b = os.dup(to_browser), os.dup(from_browser)
            os.dup2(a, 3)
            os.dup2(b, 4)

        flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run"]
        flags += ["--remote-debugging-pipe", "--disable-background-networking", "--disable-component-update"]
        self.proc = subprocess.Popen(
            [str(CHROMIUM), *flags, f"--window-size={WIDTH},900", "about:blank"],
            close_fds=False,
            preexec_fn=fds,  # noqa: PLW1509 - only os.dup/dup2, before exec
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.close(to_browser)
        os.close(from_browser)
        self._buffer, self._id, self.events = b"", 0, []
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        self.session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Network", "Runtime", "Log"):
            self.send(f"{domain}.enable", page=True)

    def send(self, method: str, params: dict | None = None, page: bool = False) -> dict:
        self._id += 1
        message = {"id": self._id, "method": method, "params": params or {}}
        if page:
            message["sessionId"] = self.session
        os.write(self._write, json.dumps(message).encode() + b"\0")
        while True:
            answer = self._receive()
            if answer.get("id") == self._id:
                if "error" in answer:
                    raise RuntimeError(f"{method}: {answer['error']}")
                return answer.get("result", {})
            self.events.append(answer)

    def _receive(self, timeout: float = 60) -> dict:
        deadline = time.monotonic() + timeout
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._read], [], [], left)[0]:
                raise TimeoutError("chromium did not answer")
            chunk = os.read(self._read, 1 << 16)
            if not chunk:
                raise RuntimeError("chromium closed the pipe")
            self._buffer += chunk
        raw, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(raw)

    def open(self, path: Path) -> None:
        self.send("Page.navigate", {"url": path.resolve().as_uri()}, page=True)
        while not any(e.get("method") == "Page.loadEventFired" for e in self.events):
            self.events.append(self._receive())

    def evaluate(self, expression: str) -> object:
        result = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True}, page=True)
        return result["result"]["value"]

    def screenshot(self, path: Path) -> None:
        height = self.evaluate("document.documentElement.scrollHeight")
        clip = {"x": 0, "y": 0, "width": WIDTH, "height": height, "scale": 1}
        shot = self.send(
            "Page.captureScreenshot",
            {"format": "png", "clip": clip, "captureBeyondViewport": True},
            page=True,
        )
        path.write_bytes(base64.b64decode(shot["data"]))

    def messages(self) -> list[str]:
        """Console calls, uncaught exceptions and browser log entries (failed loads, CSP, ...)."""
        kinds = ("Runtime.consoleAPICalled", "Runtime.exceptionThrown", "Log.entryAdded")
        return [json.dumps(e["params"])[:300] for e in self.events if e.get("method") in kinds]

    def requests(self) -> list[str]:
        return [
            e["params"]["request"]["url"]
            for e in self.events
            if e.get("method") == "Network.requestWillBeSent"
        ]

    def close(self) -> None:
        try:
            self.send("Browser.close")
            self.proc.wait(timeout=20)
        except (RuntimeError, TimeoutError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait()
        os.close(self._write)
        os.close(self._read)


@pytest.fixture
def browser():  # noqa: ANN201
    chromium = Chromium()
    yield chromium
    chromium.close()


@pytest.mark.parametrize("kind", ["two runs", "search"])
def test_the_report_opens_offline_with_every_chart_drawn(
    kind: str, browser: Chromium, tmp_path: Path, make_run, make_search
) -> None:  # noqa: ANN001
    if kind == "two runs":
        folders = [make_run(tmp_path / "a", 1e-3, samples=True), make_run(tmp_path / "b", 1e-2)]
        expected_charts = 8
    else:
        folders = [make_search(tmp_path / "search")]
        expected_charts = 7
    files = write_report(folders, tmp_path / "report.html")
    browser.open(files.html)
    charts = json.loads(browser.evaluate(CHARTS))  # type: ignore[arg-type]
    shot = (
        Path(os.environ.get("LLMFT_REPORT_SCREENSHOT_DIR", tmp_path)) / f"report-{kind.replace(' ', '-')}.png"
    )
    browser.screenshot(shot)

    assert browser.messages() == []
    assert browser.requests() == [files.html.resolve().as_uri()], "the page fetched something besides itself"
    assert len(charts) == expected_charts
    for chart in charts:
        assert chart["width"] > 300 and chart["height"] > 150, chart
        assert chart["marks"] >= 20, chart  # axes, ticks, labels and the data
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 50_000
