"""The invoice email goes out once when attempts overlap: `sending` is a lease, renewed while the
message goes out, so a second attempt (one Temporal started after a heartbeat timeout while the
first still sends) waits for it instead of sending a copy; a lease whose holder died runs out and
the next attempt sends. The change is parked at its email by an address the server can't take,
then the address is fixed and the email step's attempts are run as a worker runs them (the real
activity, SMTP server and database); one of them is held inside its SMTP session."""

from __future__ import annotations

import dataclasses
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

import activities.invoicing
from activities.invoicing import InvoiceActivities
from subchange.domain.contracts import ChangeStatus, RetryRequest
from subchange.store import invoices
from subchange.store.tables import utcnow
from tests.helpers.documents import SUPPORT, admin, org_document, unique_org
from tests.helpers.driver import wait_parked
from workflows.subscription_change import SubscriptionChange


async def parked_at_its_email(driver, org: str):
    """A change applied, its invoice unsent (the address was refused), the address fixed."""
    document = org_document(org, users=[admin(org)], billing_email=f"請求@{org}.example",
                            subscriptions=[{"product": "one", "plan": "enterprise", "seats": 30,
                                            "pricing_model": "flexible_user"}])
    driver.reload(document)
    handle = await driver.start(org, seats=35)
    view = await wait_parked(handle)
    assert view.step == "email_invoice"
    document["orgs"][0]["billing_email"] = f"billing@{org}.example"
    driver.reload(document)
    return handle


def invoice_number(deps, workflow_id: str) -> str:
    with deps.sessions() as session:
        number = invoices.change_invoice(session=session, workflow_id=workflow_id).number
    assert number is not None
    return number


def attempt(deps, workflow_id: str, n: int, number: str):
    env = ActivityEnvironment()
    env.info = dataclasses.replace(env.info, workflow_id=workflow_id, attempt=n,
                                   activity_type="email_invoice",
                                   start_to_close_timeout=timedelta(seconds=110))
    return env.run(InvoiceActivities(deps).email_invoice, number)


async def test_an_attempt_beside_one_that_sends_waits_and_the_email_goes_once(
        driver, deps, mailbox, monkeypatch):
    org = unique_org("lease")
    handle = await parked_at_its_email(driver, org)
    number = invoice_number(deps, handle.id)
    inside, release = threading.Event(), threading.Event()
    send = activities.invoicing.send_email

    def held_send(message, *, settings):
        inside.set()
        assert release.wait(15), "the test never let the send finish"
        send(message, settings=settings)

    monkeypatch.setattr(activities.invoicing, "send_email", held_send)
    with ThreadPoolExecutor(1) as pool:
        first = pool.submit(attempt, deps, handle.id, 5, number)
        assert inside.wait(15)
        monkeypatch.setattr(activities.invoicing, "send_email", send)

        with pytest.raises(ApplicationError) as waiting:
            attempt(deps, handle.id, 6, number)
        release.set()
        sent = first.result(timeout=15)

    assert waiting.value.type == "EmailInProgress" and not waiting.value.non_retryable
    assert waiting.value.next_retry_delay is not None
    assert timedelta(0) < waiting.value.next_retry_delay <= timedelta(seconds=15)
    assert attempt(deps, handle.id, 7, number) == sent  # sent: nothing goes out again
    [message] = mailbox.messages(to=f"billing@{org}.example")
    assert number in message["Subject"]

    await handle.execute_update(SubscriptionChange.retry, RetryRequest(by=SUPPORT))
    result = await driver.result(handle)
    assert result.status is ChangeStatus.COMPLETED and result.invoice == sent
    assert len(mailbox.messages(to=f"billing@{org}.example")) == 1


async def test_the_lease_of_an_attempt_that_died_runs_out_and_the_next_one_sends(
        driver, deps, mailbox):
    org = unique_org("leasedead")
    handle = await parked_at_its_email(driver, org)
    number = invoice_number(deps, handle.id)
    with deps.sessions() as session:  # an attempt took the lease, then its worker died
        assert invoices.take_sending(session=session, number=number, holder="dead.1.x",
                                     until=utcnow() - timedelta(seconds=1),
                                     emailed_to=f"billing@{org}.example", message_id="<m@x>")

    sent = attempt(deps, handle.id, 2, number)

    assert sent.emailed_to == f"billing@{org}.example"
    assert len(mailbox.messages(to=f"billing@{org}.example")) == 1
