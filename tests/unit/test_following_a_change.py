"""`starter.py change --wait` follows a change by polling its `status` query; a change that ends
between a query and the next look at the workflow must still be reported by its result (exit 0
for a completed change), with its last steps shown. The moment can't be produced on demand with
the real server (the local steps made it common: the last steps and the end come in one workflow
task), so a scripted handle plays it; the real command runs in
tests/process/test_starter_commands.py."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from types import SimpleNamespace

from temporalio.client import WorkflowExecutionStatus

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


async def test_a_change_that_ended_without_a_result_is_a_failure(capsys):
    """Terminated, say: no result of the change's own; the command fails."""
    ended = ChangeResult(workflow_id="change-r1", request_id="r1", status=ChangeStatus.CANCELLED)
    handle = EndsBetweenQueryAndDescribe(ended, WorkflowExecutionStatus.TERMINATED)
    handle.views = [view(["open_change"])]  # its status never shows a result

    assert await follow(handle, poll_seconds=0) == EXIT_FAILED


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
