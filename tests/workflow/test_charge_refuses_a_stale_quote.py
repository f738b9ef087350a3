"""A subscription that changed after the change was quoted (support reloaded its terms) is not
charged: the apply would refuse the stale quote, so the charge refuses it first, parks the change
for support with the reason, and a cancel then ends it with nothing charged. A stand-in wraps the
real charge to reload the subscription at that moment; the gateway and database are real."""

from __future__ import annotations

from temporalio import activity

from activities.payments import PaymentActivities
from subchange.domain.contracts import CancelRequest, ChangeStatus, PaymentRecord
from subchange.domain.step_io import ChargeInput
from tests.helpers.documents import SUPPORT, admin, org_document, unique_org
from tests.helpers.driver import wait_parked
from tests.helpers.observers import payment_intents_of, subscription_row
from workflows.subscription_change import SubscriptionChange


def suite(org: str, unit_price: str | None) -> dict:
    return org_document(org, users=[admin(org)], subscriptions=[{
        "product": "one", "plan": "enterprise", "seats": 30, "pricing_model": "flexible_user",
        "unit_price": unit_price}])


async def test_a_quote_older_than_the_subscription_is_not_charged(driver_with_stand_ins, deps,
                                                                   load, gateway):
    real = PaymentActivities(deps)

    @activity.defn(name="charge", no_thread_cancel_exception=True)
    def charge_after_a_reload(charge: ChargeInput) -> PaymentRecord:
        load(suite(charge.request.org_id, unit_price="999"))  # a negotiated price, just now
        return real.charge(charge)

    driver = await driver_with_stand_ins(charge=charge_after_a_reload)
    org = unique_org("stale")
    driver.reload(suite(org, unit_price=None))
    handle = await driver.start(org, seats=35)

    view = await wait_parked(handle)
    assert view.step == "charge" and "StaleSubscription" in view.last_error
    assert "changed after it was quoted" in view.last_error
    assert payment_intents_of(gateway, handle.id) == []

    await handle.execute_update(SubscriptionChange.cancel, CancelRequest(by=SUPPORT))
    result = await driver.result(handle)
    assert result.status is ChangeStatus.CANCELLED and result.payment is None
    assert subscription_row(deps, org, "one").seats == 30
