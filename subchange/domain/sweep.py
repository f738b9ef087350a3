"""The reconciliation sweep (SPEC section 11): a Temporal Schedule that starts the `ChangeSweep`
workflow every CHANGE_SWEEP_EVERY, which settles every change whose workflow ended without
closing its record (terminated, timed out, reset, failed) as the pipeline would have: a charge
of a change that was not applied refunded (or its unconfirmed intent voided), an applied change's
invoice emailed, its claim on the subscription released. Its names and its inputs and outputs."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from subchange.domain.contracts import Contract

SWEEP_WORKFLOW = "ChangeSweep"
SWEEP_SCHEDULE_ID = "subchange-sweep"
SWEEP_STEP = "sweep_changes"  # the activity: one page of change records
PAGE_SIZE = 50
LISTED_AT_MOST = 200  # settled changes a run's result names (the audit log has every one)

# What the sweep did for a change; the label of subchange_sweep_settled.
SweepAction = Literal["refund", "void", "invoice_emailed", "claim_released"]


class SweepInput(Contract):
    page_size: int = Field(default=PAGE_SIZE, ge=1, le=500)


class SweepPageInput(Contract):
    """The records after `after` (a workflow id, in order), at most `limit` of them."""

    after: str = ""
    limit: int = Field(default=PAGE_SIZE, ge=1, le=500)
    sweep_id: str = ""  # the sweep's workflow id, for the audit log


class SettledChange(Contract):
    workflow_id: str
    ended: str  # how its workflow ended: terminated, timed_out, failed, ...
    actions: list[SweepAction] = Field(default_factory=list)
    refund_id: str | None = None


class UnsettledChange(Contract):
    workflow_id: str
    ended: str
    error: str


class SweepPage(Contract):
    settled: list[SettledChange] = Field(default_factory=list)
    unsettled: list[UnsettledChange] = Field(default_factory=list)
    next_after: str | None = None  # None: no record after this page


class SweepResult(Contract):
    """What one sweep settled; `unsettled` are the changes it found ended but could not settle
    (tried again by the next sweep)."""

    settled_count: int = 0
    unsettled_count: int = 0
    settled: list[SettledChange] = Field(default_factory=list)  # the first LISTED_AT_MOST
    unsettled: list[UnsettledChange] = Field(default_factory=list)  # the first LISTED_AT_MOST
    pages: int = 0
