"""The Web UI steps of docs/runbook.md in a real browser (Debian's Chromium through Playwright)
against the Temporal dev server's Web UI, the codec server and a worker process, with payloads
encrypted as in production: find a stuck change, read it once signed in to the codec server,
cancel it; and sales record their decision as an update. The stack and the browser are
tests/ui/conftest.py."""

from __future__ import annotations

import time
import uuid

import pytest
from playwright.sync_api import expect

from tests.helpers.documents import org_document, write_fixture
from tests.helpers.processes import change_args, park_a_change, run_cli
from tests.helpers.web_ui import chromium

CHROMIUM = chromium()
pytestmark = [pytest.mark.integration, pytest.mark.one_pass(on="sqlite"), pytest.mark.skipif(
    CHROMIUM is None, reason="the browser tests need Chromium: apt install chromium")]


def final_status(env: dict[str, str], workflow_id: str, timeout: float = 20) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        view = run_cli(env, "status", workflow_id).json
        if view.get("result"):
            return view["result"]
        time.sleep(0.3)
    raise AssertionError(f"{workflow_id} did not finish within {timeout}s")


def test_an_operator_finds_reads_and_cancels_a_stuck_change(stack, operator, tmp_path):
    org, workflow_id = park_a_change(stack.env, tmp_path, prefix="webui")
    admin = f"admin@{org}.example"
    page, main = operator.page, operator.page.locator("main")

    # 1. Find it: the list filter of the README, with the step as a column.
    operator.workflows(f'ChangeStep="awaiting_payment" AND OrgId="{org}"')
    expect(page.get_by_role("link", name=workflow_id)).to_be_visible()
    operator.show_columns(["OrgId", "ChangeStep"])
    row = page.get_by_role("row").filter(has=page.get_by_role("link", name=workflow_id))
    expect(row).to_contain_text(org)
    expect(row).to_contain_text("awaiting_payment")

    # 2. Without the codec server the payloads stay sealed, in the browser too.
    operator.open_change(workflow_id)
    expect(main).to_contain_text("Codec Server could not connect")
    assert admin not in page.content()

    # 3. A wrong token is refused; the right one opens a session for the Web UI.
    operator.sign_in("not-the-token")
    expect(page.get_by_role("alert")).to_have_text("That token is not valid.")
    operator.sign_in(stack.token)
    page.wait_for_url(f"{stack.web_ui}/**")
    operator.open_change(workflow_id)
    operator.use_codec_server()
    page.reload()

    # 4. Read why it stopped: the input, the activity summaries, the user metadata. The page
    # asks the codec server to open every payload of the history (more since the webhook step
    # joined it); on a machine running the other pass beside it that can take over 5 s.
    expect(main).to_contain_text(f'"requested_by": "{admin}"', timeout=30_000)
    expect(main).to_contain_text("JPY to the card")
    expect(main).not_to_contain_text("Codec Server could not connect")
    operator.tab("User Metadata")
    expect(operator.user_metadata("Summary")).to_have_text(f"{org}/one: seats → 12 (by {admin})")
    expect(operator.user_metadata("Details")).to_contain_text(
        f"python starter.py status {workflow_id}")
    current = operator.user_metadata("Current Details")
    expect(current).to_contain_text("State: awaiting_payment")
    expect(current).to_contain_text("Waiting for: payment: the charge is tried again in 1 day")
    expect(current).to_contain_text("CardDeclined")

    # 5. Cancel from the Web UI: handled like `starter.py cancel` (nothing was charged).
    page.get_by_role("button", name="Request Cancellation").click()
    page.locator("dialog[open]").get_by_role("button", name="Confirm").click()
    result = final_status(stack.env, workflow_id)
    assert result["status"] == "cancelled", result
    operator.workflows(f'ChangeStep="awaiting_payment" AND OrgId="{org}"')
    expect(page.get_by_role("link", name=workflow_id)).to_have_count(0)
    operator.workflows(f'ChangeStatus="cancelled" AND OrgId="{org}"')
    expect(page.get_by_role("link", name=workflow_id)).to_be_visible()


def test_sales_record_their_decision_in_the_web_ui(stack, operator, tmp_path):
    org = f"webui-sales-{uuid.uuid4().hex[:6]}"
    document = org_document(org, users=[{"email": f"admin@{org}.example", "role": "admin",
                                         "products": ["one"]}],
                            subscriptions=[{"product": "one", "plan": "enterprise", "seats": 10,
                                            "payment_method": "offline", "card": None}])
    assert run_cli(stack.env, "load", str(write_fixture(tmp_path / "org.json", document))).code == 0
    started = run_cli(stack.env, *change_args(org, "one", "--seats", "12", "--wait"))
    assert started.code == 3 and started.json["state"] == "awaiting_sales", started
    workflow_id = started.json["workflow_id"]

    operator.sign_in(stack.token)
    operator.use_codec_server()
    operator.workflows(f'ChangeStep="awaiting_sales" AND OrgId="{org}"')
    operator.page.get_by_role("link", name=workflow_id).click()
    operator.send_update(
        "sales_decision", '{"approved": true, "by": "sales@vendor.example", "note": "PO 4711"}')

    result = final_status(stack.env, workflow_id)
    assert result["status"] == "completed", result
    assert result["payment"]["approved_by"] == "sales@vendor.example"
    assert result["subscription"]["seats"] == 12
