"""Open a local HTML file in headless Chromium and report what a reader's browser would: console errors, network
requests, decoded images, section ids, and a screenshot. Chrome's DevTools protocol over a WebSocket (aiohttp).

Chromium comes from Debian's `chromium` package; `find_chromium` installs it with apt-get when it is missing and the
machine allows it (browser builds cannot be downloaded here)."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--remote-debugging-port=0", "--window-size=1280,2000"]


def find_chromium() -> tuple[str | None, str]:
    """(path, "") or (None, why not): installs Debian's chromium when missing and apt-get can run as root."""
    found = shutil.which("chromium")
    if found:
        return found, ""
    if not shutil.which("apt-get") or os.geteuid() != 0:
        return None, "chromium is not installed and apt-get cannot run here (not root, or not Debian)"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update", "-q"], ["apt-get", "install", "-y", "-q", "chromium"]):
        done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=900)
        if done.returncode != 0:
            return None, f"`{' '.join(command)}` failed: {(done.stderr or done.stdout).strip()[-300:]}"
    found = shutil.which("chromium")
    return (found, "") if found else (None, "apt-get installed chromium but it is not on PATH")


@dataclass
class PageReport:
    console_errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    images: list[dict[str, Any]] = field(default_factory=list)
    section_ids: list[str] = field(default_factory=list)
    screenshot: Path | None = None


def open_page(chromium: str, page: Path, screenshot: Path, timeout_s: float = 30.0) -> PageReport:
    # Chromium's helper processes (renderer, crash handler) may outlive the browser and still write to the profile:
    # the whole process group is killed, and a file they leave behind does not fail the test.
    with tempfile.TemporaryDirectory(prefix="vlprep-chromium-", ignore_cleanup_errors=True) as profile:
        browser = subprocess.Popen([chromium, *FLAGS, f"--user-data-dir={profile}", "about:blank"],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            port = _devtools_port(Path(profile), browser, timeout_s)
            return asyncio.run(asyncio.wait_for(_inspect(port, page, screenshot), timeout_s))
        finally:
            try:
                os.killpg(browser.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            browser.wait()


def _devtools_port(profile: Path, browser: subprocess.Popen[bytes], timeout_s: float) -> int:
    marker = profile / "DevToolsActivePort"
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            lines = marker.read_text().split()
        except OSError:  # not written yet
            lines = []
        if len(lines) >= 2 and lines[0].isdigit():  # port, then the browser's socket path: written completely
            return int(lines[0])
        if browser.poll() is not None:
            raise RuntimeError(f"chromium exited with {browser.returncode} before its DevTools port opened")
        time.sleep(0.05)
    raise TimeoutError("chromium did not open its DevTools port")


async def _page_socket(session: Any, port: int) -> str:
    """The page target's WebSocket, retried while Chromium is still starting (refused connection, no page yet)."""
    import aiohttp

    while True:
        try:
            async with session.get(f"http://127.0.0.1:{port}/json/list") as response:
                targets = await response.json(content_type=None)
        except aiohttp.ClientError:
            targets = []
        pages = [target["webSocketDebuggerUrl"] for target in targets if target.get("type") == "page"]
        if pages:
            return pages[0]
        await asyncio.sleep(0.1)


async def _inspect(port: int, page: Path, screenshot: Path) -> PageReport:
    import aiohttp

    report = PageReport()
    url = page.resolve().as_uri()
    async with aiohttp.ClientSession() as session:
        socket_url = await _page_socket(session, port)
        async with session.ws_connect(socket_url, max_msg_size=0) as socket:
            pending: dict[int, asyncio.Future[Any]] = {}
            loaded = asyncio.get_running_loop().create_future()

            async def listen() -> None:
                async for message in socket:
                    event = json.loads(message.data)
                    if "id" in event and event["id"] in pending:
                        pending.pop(event["id"]).set_result(event)
                        continue
                    method, params = event.get("method"), event.get("params", {})
                    if method == "Runtime.consoleAPICalled" and params["type"] in ("error", "assert"):
                        report.console_errors.append(json.dumps(params["args"])[:300])
                    elif method == "Runtime.exceptionThrown":
                        report.console_errors.append(params["exceptionDetails"].get("text", "exception"))
                    elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
                        report.console_errors.append(params["entry"]["text"])
                    elif method == "Network.requestWillBeSent":
                        report.requests.append(params["request"]["url"])
                    elif method == "Page.loadEventFired" and not loaded.done():
                        loaded.set_result(True)

            counter = iter(range(1, 1_000_000))

            async def call(method: str, **params: Any) -> dict[str, Any]:
                number = next(counter)
                pending[number] = asyncio.get_running_loop().create_future()
                await socket.send_str(json.dumps({"id": number, "method": method, "params": params}))
                answer = await pending[number]
                if "error" in answer:
                    raise RuntimeError(f"{method}: {answer['error']}")
                return answer.get("result", {})

            listener = asyncio.create_task(listen())
            for domain in ("Page", "Runtime", "Log", "Network"):
                await call(f"{domain}.enable")
            await call("Page.navigate", url=url)
            await loaded
            facts = await call("Runtime.evaluate", returnByValue=True, expression=(
                "JSON.stringify({images: [...document.images].map(i => ({alt: i.alt, complete: i.complete, "
                "naturalWidth: i.naturalWidth})), sections: [...document.querySelectorAll('section[id]')]"
                ".map(s => s.id)})"))
            values = json.loads(facts["result"]["value"])
            report.images, report.section_ids = values["images"], values["sections"]
            shot = await call("Page.captureScreenshot", format="png", captureBeyondViewport=True)
            screenshot.write_bytes(base64.b64decode(shot["data"]))
            report.screenshot = screenshot
            listener.cancel()
    # the page itself and its data: URIs are not network requests
    report.requests = [request for request in report.requests if request != url and not request.startswith("data:")]
    return report
