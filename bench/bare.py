"""The platform's floor: a workflow of seven no-op regular activities, and a worker for it.

`python -m bench.bare TEMPORAL_ADDRESS TASK_QUEUE` runs the worker until SIGTERM. It uses the
SDK's defaults (sandbox, default converter, no logging set-up), so what it costs is what any
Temporal workflow of seven activities costs on the same server.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from datetime import timedelta

from temporalio import activity, workflow
from temporalio.client import Client
from temporalio.worker import Worker

STEPS = 7


@activity.defn
async def noop(step: int) -> int:
    return step


@workflow.defn
class BareWorkflow:
    @workflow.run
    async def run(self, name: str) -> str:
        for step in range(STEPS):
            await workflow.execute_activity(noop, step,
                                            start_to_close_timeout=timedelta(seconds=30))
        return name


async def main(address: str, task_queue: str) -> None:
    client = await Client.connect(address)
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    async with Worker(client, task_queue=task_queue, workflows=[BareWorkflow],
                      activities=[noop]):
        print("worker polling task queue", flush=True)
        await stop.wait()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
    sys.stdout.flush()
    import os
    os._exit(0)
