"""Browser tests: headless Chromium (Debian's ``chromium``) driven by Playwright.

They skip, with the reason, only where no browser can be had (no Playwright package, or no
``/usr/bin/chromium``; ``.ci/run`` installs it). Screenshots go to ``test-artefacts/browser/``
(or ``$HRWSI_TEST_ARTEFACTS``), never committed.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path(os.environ.get("HRWSI_CHROMIUM", "/usr/bin/chromium"))
HAVE_CHROMIUM = CHROMIUM.exists()
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
TOKEN = "browser-test-token"


@pytest.fixture(scope="session")
def artefacts() -> Path:
    root = Path(
        os.environ.get("HRWSI_TEST_ARTEFACTS", Path(__file__).parents[2] / "test-artefacts")
    )
    folder = root / "browser"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    """Headless Chromium for one test (Playwright's async API, on the test's event loop)."""
    try:
        from playwright.async_api import async_playwright
    except ImportError:
        pytest.skip(
            "browser tests: the playwright package is not installed (pip install -e '.[dev]')"
        )
    if not HAVE_CHROMIUM:
        pytest.skip(f"browser tests: no Chromium at {CHROMIUM} (apt-get install -y chromium)")
    async with async_playwright() as p:
        b = await p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
        try:
            yield b
        finally:
            await b.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def console_url(db_url: str) -> Iterator[str]:
    """A console (with a token) over this test's database, served by uvicorn in a thread."""
    import uvicorn

    from hrwsi.config import Config
    from hrwsi.web.console import create_console

    app = create_console(db_url, Config(), token=TOKEN, cache_s=0, coalesce_s=0.05, page_size=20)
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host="127.0.0.1",
            port=port,
            log_level="warning",
            lifespan="on",
            timeout_graceful_shutdown=1,  # open event streams do not end by themselves
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "the console did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)
