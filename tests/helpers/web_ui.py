"""What an operator does in the Temporal Web UI, as Playwright steps in Debian's Chromium: used by
tests/ui/test_web_ui_steps.py and by tests/ui/screenshots.py (the pictures in the README and
docs/runbook.md, taken of the demo)."""

from __future__ import annotations

import os
import shutil
from urllib.parse import quote

from playwright.sync_api import Locator, Page, expect


def chromium() -> str | None:
    """Debian's Chromium (apt install chromium); Playwright's own browsers would download."""
    return shutil.which(os.environ.get("CHROMIUM", "chromium"))


class Operator:
    def __init__(self, page: Page, web_ui: str, codec_server: str) -> None:
        self.page, self.web_ui, self.codec_server = page, web_ui, codec_server

    def workflows(self, query: str = "") -> None:
        """Workflows, filtered as the README says (the filter lives in the address)."""
        suffix = f"?query={quote(query)}" if query else ""
        self.page.goto(f"{self.web_ui}/namespaces/default/workflows{suffix}")
        expect(self.page.get_by_role("heading", level=1)).to_contain_text("Workflow")

    def show_columns(self, add: list[str], remove: tuple[str, ...] = ("Run ID", "End")) -> None:
        """The list's Configure Columns drawer: the search attributes as columns. Kept in this
        browser."""
        self.page.get_by_role("button", name="Configure Columns").click()
        for column in add:
            self.page.get_by_role("button", name=f"Add {column} column").click()
        for column in remove:
            self.page.get_by_role("button", name=f"Remove {column} column").click()
        self.page.keyboard.press("Escape")

    def open_change(self, workflow_id: str) -> None:
        self.page.goto(f"{self.web_ui}/namespaces/default/workflows/{workflow_id}")
        expect(self.page.get_by_role("heading", name=workflow_id)).to_be_visible()

    def tab(self, name: str) -> None:
        self.page.get_by_role("tab", name=name).click()

    def user_metadata(self, panel: str) -> Locator:
        """The text of a User Metadata panel ("Summary", "Details", "Current Details"): markdown
        rendered in an iframe under the panel's heading."""
        frame = (f'xpath=//main//h3[normalize-space()="{panel}"]/following::iframe[1]'
                 f'[preceding::h3[1][normalize-space()="{panel}"]]')
        return self.page.frame_locator(frame).locator("body")

    def send_update(self, name: str, data: str) -> None:
        """More Actions → Send an Update: pick the update by name (the UI lists the workflow's
        updates once the worker answers), type its JSON argument → Submit."""
        self.page.get_by_role("button", name="More Actions").click()
        self.page.get_by_role("menuitem", name="Send an Update").first.click()
        dialog = self.page.locator("dialog[open]")
        dialog.locator("button", has=self.page.get_by_test_id("update-select")).click()
        dialog.get_by_role("option", name=name, exact=True).click()
        editor = dialog.get_by_role("textbox", name="Data")
        editor.click()
        editor.press("ControlOrMeta+a")
        editor.press_sequentially(data)
        # The editor reformats the JSON when it loses focus, which moves the buttons: leave it
        # first, then submit.
        editor.blur()
        dialog.get_by_role("button", name="Submit").click()
        expect(dialog).to_be_hidden()

    def sign_in(self, token: str) -> None:
        """The codec server's own page: paste the token once per browser and working day."""
        self.page.goto(self.codec_server)
        self.page.get_by_label("Codec server token").fill(token)
        self.page.get_by_role("button", name="Sign in").click()

    def use_codec_server(self) -> None:
        """Web UI → the codec icon → "Use my browser setting", the endpoint, "Include cross-origin
        credentials" (so the session cookie goes along) → Apply. Kept in this browser."""
        self.page.locator("[data-testid^=data-encoder-status]").first.click()
        dialog = self.page.locator("dialog[open]")
        dialog.get_by_test_id("use-local-endpoint-input").check(force=True)
        dialog.get_by_test_id("data-encoder-endpoint-input").fill(self.codec_server)
        credentials = dialog.locator("#pass-access-credentials")
        if not credentials.is_checked():
            dialog.get_by_text("Include cross-origin credentials").click()
        expect(credentials).to_be_checked()
        dialog.get_by_role("button", name="Apply").click()
        expect(dialog).to_be_hidden()
