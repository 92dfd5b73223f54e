"""A real browser opens the HTML report: it loads, logs no error, and asks the network for nothing.

Headless Chromium (Debian's ``chromium`` package) is driven over the DevTools
protocol through ``--remote-debugging-pipe`` (NUL-separated JSON on file
descriptors 3 and 4), so no websocket client or browser download is needed.
The screenshot is kept in pytest's temporary directory for people to look at.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from test_report_model import HOSTILE, sample_result

from summary_doctor.report.html import render

pytestmark = pytest.mark.browser

CHROMIUM = next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-extensions",
    "--remote-debugging-pipe",
]


def _as_fds_3_and_4(read: int, write: int) -> None:
    """In the child: the browser reads commands on fd 3 and writes replies on fd 4."""
    read, write = os.dup(read), os.dup(write)  # out of the way of 3 and 4 first
    os.dup2(read, 3)
    os.dup2(write, 4)


class DevTools:
    """The DevTools protocol over a pipe: send commands, collect events, in one thread."""

    def __init__(self, profile: Path) -> None:
        to_browser_read, self._write = os.pipe()
        self._read, from_browser_write = os.pipe()
        os.set_inheritable(to_browser_read, True)
        os.set_inheritable(from_browser_write, True)
        self.process = subprocess.Popen(
            [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", "about:blank"],
            preexec_fn=lambda: _as_fds_3_and_4(to_browser_read, from_browser_write),
            close_fds=False,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.close(to_browser_read)
        os.close(from_browser_write)
        self._buffer = b""
        self._next_id = 0
        self.events: list[dict[str, Any]] = []

    def _receive(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            if time.monotonic() > deadline:
                raise TimeoutError("chromium did not answer in time")
            chunk = os.read(self._read, 1 << 16)
            if not chunk:
                raise RuntimeError("chromium closed the DevTools pipe")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def call(self, method: str, session: str | None = None, timeout: float = 30, **params: Any) -> dict[str, Any]:
        """Send a command and return its result; events arriving meanwhile are kept in ``events``."""
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        os.write(self._write, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            reply = self._receive(deadline)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def wait_for(self, method: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while not any(e.get("method") == method for e in self.events):
            self.events.append(self._receive(deadline))

    def close(self) -> None:
        with contextlib.suppress(RuntimeError, TimeoutError, OSError):
            self.call("Browser.close", timeout=5)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        os.close(self._read)
        os.close(self._write)


def open_page(
    path: Path, profile: Path, screenshot: Path, *, height: int = 2000
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Load ``path`` in a 1280 x ``height`` window, save a screenshot; return the events and page facts."""
    tools = DevTools(profile)
    try:
        target = next(t for t in tools.call("Target.getTargets")["targetInfos"] if t["type"] == "page")
        session = tools.call("Target.attachToTarget", targetId=target["targetId"], flatten=True)["sessionId"]
        for domain in ("Page", "Runtime", "Log", "Network"):
            tools.call(f"{domain}.enable", session)
        tools.call(
            "Emulation.setDeviceMetricsOverride", session, width=1280, height=height, deviceScaleFactor=1, mobile=False
        )
        tools.call("Page.navigate", session, url=path.as_uri())
        tools.wait_for("Page.loadEventFired")
        facts = tools.call(
            "Runtime.evaluate",
            session,
            returnByValue=True,
            expression="""({images: document.images.length,
                broken: [...document.images].filter(i => !i.complete || i.naturalWidth === 0).length,
                findings: document.querySelectorAll('article.finding').length,
                scripts: [...document.scripts].map(s => s.textContent).join('\\n'),
                title: document.title})""",
        )["result"]["value"]
        shot = tools.call("Page.captureScreenshot", session, format="png", captureBeyondViewport=False)
        screenshot.write_bytes(base64.b64decode(shot["data"]))
        return tools.events, facts
    finally:
        tools.close()


def _errors(events: list[dict[str, Any]]) -> list[str]:
    errors = []
    for event in events:
        method, params = event.get("method"), event.get("params", {})
        if method == "Runtime.exceptionThrown":
            errors.append(params["exceptionDetails"].get("text", "exception"))
        elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            errors.append(json.dumps(params.get("args")))
        elif method == "Log.entryAdded" and params["entry"].get("level") == "error":
            errors.append(params["entry"].get("text", ""))
    return errors


def _requests(events: list[dict[str, Any]], page: Path) -> list[str]:
    urls = [e["params"]["request"]["url"] for e in events if e.get("method") == "Network.requestWillBeSent"]
    return [u for u in urls if u != page.as_uri() and not u.startswith("data:")]


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install -y chromium)")
@pytest.mark.parametrize("runs", [("healthy_mlp",), ("healthy_mlp", "healthy_cnn")], ids=["one-run", "two-runs"])
def test_report_loads_offline_without_errors(tmp_path, runs):
    page = tmp_path / "report.html"
    page.write_text(render(sample_result(runs=runs, cross=len(runs) > 1)), encoding="utf-8")
    screenshot = tmp_path / "report.png"
    events, facts = open_page(page, tmp_path / "profile", screenshot)
    assert _errors(events) == []
    assert _requests(events, page) == []
    assert facts["broken"] == 0 and facts["images"] >= facts["findings"] == 6 + (len(runs) > 1)
    assert "alert(1)" not in facts["scripts"]
    assert HOSTILE.split('"')[0] not in facts["title"]
    assert screenshot.stat().st_size > 10_000
