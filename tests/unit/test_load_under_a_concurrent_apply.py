"""`starter.py load` racing a change's apply on the same subscription: the loader reads the row,
asks the gateway about the card, then writes; an apply that commits in between must not be
overwritten, nor the load's values slip under the version the apply took. Whichever the database
lets through first, the other refuses cleanly: the apply as stale, or the load, with nothing of
it written. Both are the real code on the real database and gateway (localstripe); a gateway
wrapper holds the loader at the moment the test needs, which real parts can't be timed to."""

from __future__ import annotations

import copy
import dataclasses
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.admission import AdmissionActivities
from activities.dependencies import Dependencies
from activities.payments import PaymentActivities
from activities.subscriptions import SubscriptionActivities
from subchange.app.fixtures import FixtureConflict
from subchange.domain.contracts import ChangeRequest
from subchange.domain.step_io import ApplyInput, ChargeInput, DatedRequest
from subchange.store import changes
from tests.helpers.documents import admin, load_document, org_document, unique_org
from tests.helpers.observers import change_rows, subscription_row
from tests.helpers.services import database_kind

HOLD_LIMIT = 15  # seconds; a guard against hanging, not a timing assertion


class HeldGateway:
    """The real gateway, except that the first call of `method` waits for `release` first."""

    def __init__(self, real: Any, method: str) -> None:
        self.real, self.method = real, method
        self.reached, self.release = threading.Event(), threading.Event()

    def __getattr__(self, name: str) -> Any:
        real = getattr(self.real, name)
        if name != self.method or self.reached.is_set():
            return real

        def held(*args: Any, **kwargs: Any) -> Any:
            self.reached.set()
            assert self.release.wait(HOLD_LIMIT), "the test never released the loader"
            return real(*args, **kwargs)
        return held


def step(deps: Dependencies, activity: Any, workflow_id: str, arg: Any) -> Any:
    """One attempt of a step, as a worker runs it."""
    env = ActivityEnvironment()
    env.info = dataclasses.replace(env.info, workflow_id=workflow_id, attempt=1)
    return env.run(activity, arg)


@pytest.fixture
def background() -> Iterator[Any]:
    with ThreadPoolExecutor(max_workers=2) as pool:
        yield pool.submit


def test_a_load_and_an_apply_that_overlap_never_overwrite_each_other(deps, background):
    org = unique_org("load-race")
    document = org_document(org, users=[admin(org)], subscriptions=[
        {"product": "one", "plan": "enterprise", "seats": 30, "pricing_model": "flexible_user"}])
    load_document(deps, document)
    # A change 30 → 35, quoted on version 1 and charged: the real steps, up to the apply.
    request = ChangeRequest.model_validate({
        "request_id": f"req-{uuid.uuid4().hex[:12]}", "org_id": org, "product": "one",
        "requested_by": f"admin@{org}.example", "change": {"kind": "seats", "seats": 35}})
    workflow_id = request.workflow_id
    with deps.sessions() as session:
        changes.open_change(session=session, workflow_id=workflow_id, request=request)
    quote = step(deps, AdmissionActivities(deps).quote_change, workflow_id,
                 DatedRequest(request=request, change_date=date.today())).quote
    assert quote is not None and quote.subscription_version == 1
    paid = step(deps, PaymentActivities(deps).charge, workflow_id,
                ChargeInput(request=request, quote=quote))
    # Meanwhile someone loads the fixture file, edited: 40 seats at a negotiated price.
    edited = copy.deepcopy(document)
    edited["orgs"][0]["subscriptions"][0].update(seats=40, unit_price="4000")

    held = HeldGateway(deps.gateway, "customer_exists")  # asked after the row was read
    load = background(load_document, dataclasses.replace(deps, gateway=held), edited)
    assert held.reached.wait(HOLD_LIMIT)
    apply: Future = background(step, deps, SubscriptionActivities(deps).apply_change,
                               workflow_id, ApplyInput(request=request, quote=quote,
                                                       payment=paid))
    if database_kind() == "postgresql":
        # Row locks: the loader has not written the subscription yet, so the apply commits.
        applied = apply.result(HOLD_LIMIT)
        assert applied.subscription.seats == 35
    else:
        # SQLite: the loader's transaction holds the database's write lock since its first
        # write (the org row), so the apply waits for it whatever the test does.
        time.sleep(0.5)
        assert not apply.done()
    held.release.set()

    if database_kind() == "postgresql":
        with pytest.raises(FixtureConflict) as refused:
            load.result(HOLD_LIMIT)
        sub = subscription_row(deps, org, "one")
        message = str(refused.value)
        assert message.startswith("orgs.0.subscriptions.0: "), message
        assert "changed while loading" in message and "version 1" in message, message
        # the apply stands, with the version it took; nothing of the load was written
        assert (sub.seats, sub.unit_price, sub.version) == (35, None, 2)
        assert change_rows(deps, workflow_id)["applied_change"] == 1
    else:
        load.result(HOLD_LIMIT)
        with pytest.raises(ApplicationError) as stale:
            apply.result(HOLD_LIMIT)
        assert stale.value.type == "StaleSubscription"
        sub = subscription_row(deps, org, "one")
        assert (sub.seats, sub.unit_price, sub.version) == (40, Decimal(4000), 2)
        assert change_rows(deps, workflow_id)["applied_change"] == 0
