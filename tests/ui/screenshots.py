"""The Web UI pictures of the README and docs/runbook.md, taken in headless Chromium of the
running demo (`make demo`):

    .venv/bin/python -m tests.ui.screenshots         # writes docs/web-ui-*.png

It signs in to the demo's codec server with the token in var/devstack.env, as an operator would,
so the pictures show decrypted payloads.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from playwright.sync_api import expect, sync_playwright

from subchange.app.client import connect
from subchange.dev.devstack import ROOT, Stack
from subchange.settings import get_settings
from tests.helpers.web_ui import Operator, chromium

WAITING = 'ChangeStep IN ("awaiting_support", "awaiting_payment")'
COLUMNS = ["OrgId", "Product", "ChangeKind", "ChangeStep", "ChangeStatus"]


def waiting_change() -> str:
    async def first() -> str | None:
        client = await connect(get_settings())
        async for execution in client.list_workflows(f"{WAITING} AND ExecutionStatus='Running'"):
            return execution.id
        return None

    found = asyncio.run(first())
    if found is None:
        raise SystemExit(f"no change matches {WAITING}: start one with a declined card "
                         "first (docs/runbook.md)")
    return found


def main(out: Path = ROOT / "docs") -> None:
    settings = get_settings()
    browser_path = chromium()
    if browser_path is None:
        raise SystemExit("needs Chromium: apt install chromium")
    workflow_id = waiting_change()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=browser_path, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1700, "height": 900})
        operator = Operator(page, settings.web_ui_url, Stack(var=ROOT / "var").codec_endpoint)
        operator.sign_in(settings.codec_server_token)
        operator.workflows()
        operator.use_codec_server()
        operator.show_columns(COLUMNS, remove=("Run ID", "Type", "End"))

        operator.workflows()
        expect(page.get_by_role("link", name=workflow_id)).to_be_visible()
        page.screenshot(path=out / "web-ui-list.png")

        operator.workflows(WAITING)
        expect(page.get_by_role("link", name=workflow_id)).to_be_visible()
        page.screenshot(path=out / "web-ui-awaiting-support.png")

        operator.open_change(workflow_id)
        expect(page.locator("main")).to_contain_text("to the card")
        page.screenshot(path=out / "web-ui-change.png")

        operator.tab("User Metadata")
        expect(operator.user_metadata("Current Details")).to_contain_text("Waiting for")
        page.screenshot(path=out / "web-ui-user-metadata.png")
        browser.close()
    print(f"wrote {out}/web-ui-*.png of {workflow_id}", file=sys.stderr)


if __name__ == "__main__":
    main()
