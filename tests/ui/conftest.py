"""The UI room: the operator's steps in a real browser, Debian's Chromium through Playwright,
against a Temporal dev server of its own with the Web UI, the codec server and a worker process,
payloads encrypted as in production, on the database, localstripe and SMTP sink of
tests/conftest.py."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from secrets import token_urlsafe

import pytest
from playwright.sync_api import Browser, sync_playwright

from subchange.dev.devstack import free_port, start_codec_server, start_temporal, stop_process
from subchange.payload_keys import new_key_setting
from tests.helpers.processes import WorkerProcess, service_env
from tests.helpers.web_ui import Operator, chromium


@dataclass
class WebStack:
    env: dict[str, str]
    web_ui: str
    codec_server: str

    @property
    def token(self) -> str:
        return self.env["CODEC_SERVER_TOKEN"]


@pytest.fixture(scope="module")
def stack(tmp_path_factory, engine, database_url, localstripe_url, smtp) -> Iterator[WebStack]:
    """The embedded stack on the suite's database (`engine`: migrated, with the staff directory
    the updates are checked against, also when these tests run alone)."""
    var = tmp_path_factory.mktemp("web-ui")
    port, ui_port, codec_port = free_port(), free_port(), free_port()
    web_ui, codec_server = f"http://localhost:{ui_port}", f"http://localhost:{codec_port}"
    env = service_env(temporal_address=f"127.0.0.1:{port}", database_url=database_url,
                      localstripe_url=localstripe_url, smtp_port=smtp.port, task_queue="web-ui",
                      PAYLOAD_KEYS=new_key_setting("web"), CODEC_SERVER_TOKEN=token_urlsafe(18),
                      WEB_UI_URL=web_ui)
    processes = []
    try:
        processes.append(start_temporal(var / "temporal.db", port, ui_port, var / "temporal.log",
                                        codec_endpoint=codec_server))
        processes.append(start_codec_server(env, codec_port, web_ui, var / "codec-server.log"))
        with WorkerProcess(env, var / "worker.log").running():
            yield WebStack(env, web_ui, codec_server)
    finally:
        for process in reversed(processes):
            stop_process(process)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium(), args=["--no-sandbox"])
        yield browser
        browser.close()


@pytest.fixture
def operator(browser, stack) -> Iterator[Operator]:
    with contextlib.closing(browser.new_context(viewport={"width": 1400, "height": 1000})) as ctx:
        page = ctx.new_page()
        page.set_default_timeout(15_000)
        yield Operator(page, stack.web_ui, stack.codec_server)
