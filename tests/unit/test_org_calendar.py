"""A change is dated by its organisation's calendar (its `time_zone`), not by UTC: a Tokyo
customer's change at 08:00 JST is priced as of that day, where UTC still has the day before,
and the quote's proration counts from it. The real quote activity on the real database."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, date, datetime

from temporalio.testing import ActivityEnvironment

from activities.admission import AdmissionActivities
from subchange.domain.contracts import ChangeRequest
from subchange.domain.facts import Organisation
from subchange.domain.step_io import DatedRequest
from tests.helpers.documents import admin, load_document, org_document, unique_org

# 2026-12-31 23:30 UTC is already 2027-01-01 08:30 in Tokyo.
NEW_YEAR_MORNING_IN_TOKYO = datetime(2026, 12, 31, 23, 30, tzinfo=UTC)


def request(org: str) -> ChangeRequest:
    return ChangeRequest(request_id=f"req-{uuid.uuid4().hex[:10]}", org_id=org, product="one",
                         requested_by=f"admin@{org}.example",
                         change={"kind": "seats", "seats": 35})


def test_the_change_date_is_the_organisations_day():
    dated = DatedRequest(request=request("acme"), change_date=date(2026, 12, 31),
                         as_of=NEW_YEAR_MORNING_IN_TOKYO)
    assert dated.day_for(Organisation("acme", "JPY", "Asia/Tokyo")) == date(2027, 1, 1)
    assert dated.day_for(Organisation("acme", "JPY", "UTC")) == date(2026, 12, 31)
    assert dated.day_for(Organisation("acme", "USD", "America/New_York")) == date(2026, 12, 31)
    older = DatedRequest(request=request("acme"), change_date=date(2026, 12, 31))
    assert older.day_for(Organisation("acme", "JPY", "Asia/Tokyo")) == date(2026, 12, 31)


def test_a_tokyo_customer_in_the_morning_is_quoted_for_that_day(deps):
    org = unique_org("tokyo")
    document = org_document(org, users=[admin(org)], subscriptions=[{
        "product": "one", "plan": "enterprise", "seats": 30, "pricing_model": "flexible_user",
        "period_start": "2027-01-01", "period_end": "2027-02-01"}])
    document["orgs"][0]["time_zone"] = "Asia/Tokyo"
    load_document(deps, document)
    change = request(org)
    env = ActivityEnvironment()
    env.info = dataclasses.replace(env.info, workflow_id=change.workflow_id)

    outcome = env.run(AdmissionActivities(deps).quote_change, DatedRequest(
        request=change, change_date=date(2026, 12, 31), as_of=NEW_YEAR_MORNING_IN_TOKYO))

    assert outcome.rejection is None, outcome.rejection  # UTC's day is outside the period
    assert outcome.quote.change_date == date(2027, 1, 1)
    assert (outcome.quote.remaining_days, outcome.quote.period_days) == (31, 31)
