"""`starter.py change --wait` follows a change by polling its `status` query; a change that ends
between a query and the next look at the workflow must still be reported by its result (exit 0
for a completed change), with its last steps shown; one ended from outside (terminated, timed
out) by that end and what it was doing then (exit 1), even when it was waiting for a person.
The moment can't be produced on demand with the real server (the local steps made it common: the
last steps and the end come in one workflow
task), so a scripted handle plays it; the real command runs in
tests/process/test_starter_commands.py."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from types import SimpleNamespace

import pytest
from temporalio.client import (
    WorkflowExecutionStatus,
    WorkflowFailureError,
    WorkflowQueryFailedError,
)
from temporalio.exceptions import TerminatedError

from subchange.app.cli.changes import follow
from subchange.app.cli.common import EXIT_FAILED, EXIT_OK
from subchange.domain.contracts import (
    ChangeResult,
    ChangeStatus,
    ChangeStatusView,
    PaymentRecord,
    StepRecord,
)

NOW = datetime(2026, 12, 6, 9, 0, tzinfo=UTC)


def view(steps: list[str], result: ChangeResult | None = None) -> ChangeStatusView:
    return ChangeStatusView(
        workflow_id="change-r1", state="completed" if result else "applied", step=steps[-1],
        waiting_for=None, last_error=None, result=result,
        history=[StepRecord(step=step, started_at=NOW, finished_at=NOW, outcome="ok")
                 for step in steps])


class EndsBetweenQueryAndDescribe:
    """The first query sees the change before its last steps; by the describe it has ended."""

    def __init__(self, result: ChangeResult, ended_as: WorkflowExecutionStatus) -> None:
        self.result_value, self.ended_as = result, ended_as
        self.views = [view(["open_change", "charge"]),
                      view(["open_change", "charge", "email_invoice", "close_change"], result)]

    async def query(self, name: str, result_type: type) -> ChangeStatusView:
        return self.views.pop(0) if len(self.views) > 1 else self.views[0]

    async def describe(self) -> SimpleNamespace:
        return SimpleNamespace(status=self.ended_as)

    async def result(self) -> ChangeResult:
        return self.result_value


async def test_a_change_that_completes_between_two_looks_is_reported_completed(capsys):
    completed = ChangeResult(workflow_id="change-r1", request_id="r1",
                             status=ChangeStatus.COMPLETED)
    code = await follow(EndsBetweenQueryAndDescribe(completed, WorkflowExecutionStatus.COMPLETED),
                        poll_seconds=0)

    out, err = capsys.readouterr()
    assert code == EXIT_OK
    assert json.loads(out)["status"] == "completed"
    assert [line.split()[0] for line in err.splitlines()] == [
        "open_change", "charge", "email_invoice", "close_change"]


class EndedWithoutAResult:
    """A change whose run was ended from outside (terminated, timed out): the status query
    still answers from its history, with what it was doing then; its result raises, as the
    real client's does."""

    def __init__(self, last_view: ChangeStatusView | None, ended_as: WorkflowExecutionStatus
                 ) -> None:
        self.last_view, self.ended_as = last_view, ended_as

    async def query(self, name: str, result_type: type) -> ChangeStatusView:
        if self.last_view is None:
            raise WorkflowQueryFailedError("the run ended before it could answer")
        return self.last_view

    async def describe(self) -> SimpleNamespace:
        return SimpleNamespace(status=self.ended_as)

    async def result(self) -> ChangeResult:
        raise WorkflowFailureError(cause=TerminatedError("stuck, cleaned up by an operator"))

    id = "change-r1"


def waiting_for_support() -> ChangeStatusView:
    return ChangeStatusView(
        workflow_id="change-r1", state="awaiting_support", step="charge",
        waiting_for="support: retry or cancel", last_error="card declined",
        history=[StepRecord(step="charge", started_at=NOW, finished_at=NOW, outcome="failed")])


@pytest.mark.parametrize(("ended_as", "reported"), [
    (WorkflowExecutionStatus.TERMINATED, "terminated"),
    (WorkflowExecutionStatus.TIMED_OUT, "timed_out"),
])
@pytest.mark.parametrize("last_view", [view(["open_change", "charge"]), waiting_for_support(),
                                       None], ids=["running", "waiting", "unanswered"])
async def test_a_change_ended_from_outside_is_reported_as_such(capsys, ended_as, reported,
                                                               last_view):
    """Terminated or timed out: no result of its own, and nobody waits any more. Reported with
    its end and what it was doing then (exit 1, ended otherwise): not as waiting for a person
    (exit 3), and not as a WorkflowFailureError traceback."""
    code = await follow(EndedWithoutAResult(last_view, ended_as), poll_seconds=0)

    out, err = capsys.readouterr()
    assert code == EXIT_FAILED
    report = json.loads(out)
    assert (report["workflow_id"], report["status"], report["state"]) == (
        "change-r1", reported, reported)
    assert report["waiting_for"] is None and report["result"] is None
    assert report["last_state"] == (last_view.state if last_view else None)
    assert f"change-r1 {reported.replace('_', ' ')}" in err and "waiting:" not in err


async def test_a_change_carried_to_renewal_says_so_beside_its_steps(capsys):
    """Below the gateway's minimum charge there is no charge step: the command says where the
    amount went, and the result's payment is `carried`."""
    carried = ChangeResult(workflow_id="change-r1", request_id="r1",
                           status=ChangeStatus.COMPLETED,
                           payment=PaymentRecord(method="carried", amount="0.47",
                                                 currency="USD"))
    handle = EndsBetweenQueryAndDescribe(carried, WorkflowExecutionStatus.COMPLETED)

    assert await follow(handle, poll_seconds=0) == EXIT_OK

    out, err = capsys.readouterr()
    assert json.loads(out)["payment"]["method"] == "carried"
    assert err.splitlines()[-1].split()[:3] == ["payment", "carried:", "0.47"]
    assert "next renewal invoice" in err and "nothing charged now" in err
