from decimal import Decimal

from subchange.contracts import ChangeStatus
from tests.support import org_document
from tests.workflow_helpers import request_for, run_change


async def test_flexible_increase_is_charged_and_invoiced(ts_client, ts_worker, load, mailbox):
    users = [{"email": "admin@smoke.example", "role": "admin", "products": ["one"]}]
    load(org_document("smoke", users=users, subscriptions=[
        {"product": "one", "plan": "enterprise", "seats": 30, "pricing_model": "flexible_user"}]))
    result = await run_change(ts_client, ts_worker.task_queue, request_for(
        "smoke", "one", "admin@smoke.example", {"kind": "seats", "seats": 35}))
    assert result.status is ChangeStatus.COMPLETED, result.reason
    assert result.quote.amount_due > Decimal(0)
    assert result.payment.method == "card" and result.payment.charge_id
    assert result.subscription.seats == 35
    assert len(mailbox.messages(to="billing@smoke.example")) == 1
