"""A real headless Chromium driven over the DevTools protocol, for tests of pages with JavaScript."""

from __future__ import annotations

import itertools
import json
import shutil
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from tests.support.mosquitto import free_port, wait_port


class Browser:
    """One Chromium process with one page; ``evaluate`` runs JavaScript in it and returns the value."""

    def __init__(self) -> None:
        binary = shutil.which("chromium") or shutil.which("chromium-browser")
        if binary is None:
            raise RuntimeError("chromium is not installed (scripts/system-deps.sh installs it)")
        self._profile = tempfile.TemporaryDirectory(prefix="hezo-chromium-")
        self.port = free_port()
        self._process = subprocess.Popen(
            [
                binary,
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                f"--remote-debugging-port={self.port}",
                "--remote-debugging-address=127.0.0.1",
                f"--user-data-dir={Path(self._profile.name)}",
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_port("127.0.0.1", self.port, timeout=30)
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/json/list", timeout=10) as answer:
            pages = [t for t in json.load(answer) if t["type"] == "page"]
        from websockets.sync.client import connect

        self._socket = connect(pages[0]["webSocketDebuggerUrl"], max_size=None)
        self._ids = itertools.count(1)

    def _call(self, method: str, **params: Any) -> dict[str, Any]:
        call_id = next(self._ids)
        self._socket.send(json.dumps({"id": call_id, "method": method, "params": params}))
        while True:
            message = json.loads(self._socket.recv(timeout=60))
            if message.get("id") == call_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                result: dict[str, Any] = message["result"]
                return result

    def open(self, url: str) -> None:
        self._call("Page.navigate", url=url)

    def evaluate(self, expression: str) -> Any:
        answer = self._call("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in answer:
            return None
        return answer["result"].get("value")

    def close(self) -> None:
        self._socket.close()
        self._process.terminate()
        try:
            self._process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        # Chromium's helper processes may still write into the profile for a moment after the browser exits:
        # remove it again until it is gone (a cleanup, never what a test asserts).
        for _ in range(50):
            try:
                self._profile.cleanup()
                return
            except OSError:
                time.sleep(0.1)
        shutil.rmtree(self._profile.name, ignore_errors=True)


def log_in(browser: Browser, name: str, password: str) -> None:
    """Fill in and send the login form the browser was sent to, as a person would."""
    from tests.support.waiting import eventually

    eventually(
        "the login form",
        lambda: browser.evaluate("document.querySelector('form[action=\\'/login\\']') !== null"),
    )
    browser.evaluate(
        f"document.querySelector('input[name=username]').value = {json.dumps(name)};"
        f"document.querySelector('input[name=password]').value = {json.dumps(password)};"
        "document.querySelector('form[action=\\'/login\\'] button').click()"
    )
    eventually(
        "logged in",
        lambda: browser.evaluate("location.pathname !== '/login' && document.readyState === 'complete'"),
    )
