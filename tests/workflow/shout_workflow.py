"""A workflow of one activity, in a module of its own so the sandbox imports nothing else
(tests/workflow/test_sandbox_serialization_context.py)."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow


@workflow.defn(sandboxed=True)
class Shout:
    @workflow.run
    async def run(self, text: str) -> str:
        return await workflow.execute_activity(
            "shout", text, start_to_close_timeout=timedelta(seconds=10))
