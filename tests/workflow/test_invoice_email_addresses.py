"""The invoice email reaches the billing address as the organisation has it when it is sent: an
internationalized domain goes out in its ASCII form (IDNA); a mailbox name in non-ASCII characters,
which the local SMTP server (no SMTPUTF8) can't take, parks the change at once with a message that
says so and what to do, and once support corrects the address and retries, the invoice goes to
the corrected one. Real workflow, activities and SMTP server."""

from __future__ import annotations

from subchange.domain.contracts import ChangeStatus, RetryRequest
from tests.helpers.documents import SUPPORT, admin, org_document, unique_org
from tests.helpers.driver import wait_parked
from tests.helpers.observers import subscription_row
from workflows.subscription_change import SubscriptionChange


def with_billing(org: str, billing_email: str) -> dict:
    """A card-paying suite subscription whose invoices go to `billing_email`."""
    return org_document(org, users=[admin(org)], billing_email=billing_email, subscriptions=[{
        "product": "one", "plan": "enterprise", "seats": 30, "pricing_model": "flexible_user"}])


async def test_an_internationalized_domain_is_mailed_in_its_ascii_form(driver, mailbox):
    org = unique_org("idn")
    driver.reload(with_billing(org, f"billing@{org}.例え.jp"))
    result = await driver.run(org, seats=35)

    assert result.status is ChangeStatus.COMPLETED, result.reason
    assert result.invoice.emailed_to == f"billing@{org}.例え.jp"
    [message] = mailbox.messages(to=f"billing@{org}.xn--r8jz45g.jp")
    assert result.invoice.number in message["Subject"]


async def test_a_mailbox_the_server_cannot_take_parks_and_the_corrected_address_gets_it(
        driver, deps, mailbox):
    org = unique_org("utf8")
    driver.reload(with_billing(org, f"請求@{org}.example"))
    handle = await driver.start(org, seats=35)

    view = await wait_parked(handle)
    assert view.step == "email_invoice"
    assert "SMTPUTF8" in view.last_error and "billing_email" in view.last_error
    tries = [s for s in view.history if s.step == "email_invoice"]
    assert [s.outcome for s in tries] == ["failed"]  # not retried: the address must change
    assert subscription_row(deps, org, "one").seats == 35  # applied; only the email waits
    assert mailbox.messages(to=f"請求@{org}.example") == []

    driver.reload(with_billing(org, f"billing@{org}.example"))
    await handle.execute_update(SubscriptionChange.retry, RetryRequest(by=SUPPORT))

    result = await driver.result(handle)
    assert result.status is ChangeStatus.COMPLETED
    assert result.invoice.emailed_to == f"billing@{org}.example"
    [message] = mailbox.messages(to=f"billing@{org}.example")
    assert result.invoice.number in message["Subject"]
