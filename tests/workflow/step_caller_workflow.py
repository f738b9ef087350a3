"""A workflow that runs one step, by name, with its argument as given: what a workflow of another
release sends a worker whose step expects another input (tests/workflow/
test_logs_hold_no_addresses.py). In a module of its own so the sandbox imports nothing else."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy


@workflow.defn(sandboxed=True)
class CallsAStep:
    @workflow.run
    async def run(self, step: str, argument: dict[str, Any]) -> None:
        await workflow.execute_activity(step, argument,
                                        start_to_close_timeout=timedelta(seconds=30),
                                        retry_policy=RetryPolicy(maximum_attempts=1))
