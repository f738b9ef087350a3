"""Which version of the workflow's code a run follows: its patches.

A run takes a patch where the changed code first asks `workflow.patched(...)`, and on replay the
answer depends on the workflow task that call falls in. A local step can end in one workflow task
and hand its result to the workflow code in the next, while a replay hands it over within the
first: a patch first asked right after a local step could answer otherwise on replay than it did
when the change ran (a nondeterminism error; the interleaving test found it under load).

So the patch of the local steps, LOCAL_DATABASE_STEPS, is taken at the very start of a run, before
any step, and stands for every patch before it: a run recorded with it was started by code that
had them all, so they hold without markers of their own (`patched`). Histories from before it ask
each patch where they always did. A patch added later must be taken at the start too
(`take_at_start`); tests/workflow/test_local_steps.py checks that no other module asks.
"""

from __future__ import annotations

from temporalio import workflow

# Histories recorded since this patch run the short database steps as local activities.
LOCAL_DATABASE_STEPS = "local-database-steps"


def take_at_start() -> None:
    """The run's first act: the patches it follows are recorded (or, on replay, read) now."""
    workflow.patched(LOCAL_DATABASE_STEPS)


def local_steps() -> bool:
    """Whether this run was recorded with local steps (answered from the SDK's memo)."""
    return workflow.patched(LOCAL_DATABASE_STEPS)


def patched(patch: str) -> bool:
    """`workflow.patched` for a patch older than LOCAL_DATABASE_STEPS."""
    return local_steps() or workflow.patched(patch)
