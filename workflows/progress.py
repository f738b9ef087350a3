"""What a change has done and is doing: the history of steps behind the `status` query and the
Web UI's current details. Plain data, driven by the workflow with `workflow.now()` times."""

from __future__ import annotations

from datetime import datetime, timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from subchange.domain.contracts import StepRecord


class Progress:
    def __init__(self) -> None:
        self.history: list[StepRecord] = []
        self.current_step: str | None = None
        self.waiting_for: str | None = None
        self.last_error: str | None = None

    def begin(self, now: datetime, step: str) -> None:
        self.current_step = step
        self.history.append(StepRecord(step=step, started_at=now))

    def wait(self, now: datetime, step: str, what: str) -> None:
        self.waiting_for = what
        self.history.append(StepRecord(step=f"awaiting_{step}", started_at=now,
                                       outcome="waiting", detail=what))

    def done(self, now: datetime, outcome: str, detail: str | None = None) -> None:
        record = self.history[-1]
        record.finished_at, record.outcome = now, outcome
        if detail:
            record.detail = detail
        self.waiting_for = None

    def note(self, now: datetime, step: str, detail: str) -> None:
        """Something that happened at once, without a step: a card replaced, say."""
        self.history.append(StepRecord(step=step, started_at=now, finished_at=now,
                                       outcome="ok", detail=detail))

    def fail(self, now: datetime, message: str) -> None:
        self.done(now, "failed", message)
        self.last_error = f"{self.current_step}: {message}"

    def describe(self, state: str) -> str:
        lines = [f"**State:** {state}"]
        if self.current_step:
            lines.append(f"**Step:** {self.current_step}")
        if self.waiting_for:
            lines.append(f"**Waiting for:** {self.waiting_for}")
        if self.last_error:
            lines.append(f"**Last error:** {self.last_error}")
        return "\n\n".join(lines)


def describe_duration(duration: timedelta) -> str:
    """'14 days', '2 hours', '1 day 6 hours': for people reading a status or the Web UI."""
    seconds = int(duration.total_seconds())
    parts = []
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60), ("second", 1)):
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count} {unit}{'s' if count != 1 else ''}")
    return " ".join(parts[:2]) or "0 seconds"

