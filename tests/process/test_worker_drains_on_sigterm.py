"""A deploy stops a worker with SIGTERM: it drains. It takes no new work, tells the orchestrator
so on /healthz (503), lets the step it runs finish (the change is applied by the attempt that
started applying it, not cut off and run again), and exits 0 within GRACEFUL_SHUTDOWN_TIMEOUT;
the next worker carries the change on, charged once.

Without the grace the SDK cancels the step at once: the same test then sees a second attempt of
apply_change (checked by hand with GRACEFUL_SHUTDOWN_TIMEOUT=PT0.1S)."""

from __future__ import annotations

import asyncio
import signal
import socket
import time
import uuid

import httpx
import pytest

from subchange.domain.contracts import ChangeStatus
from tests.helpers.driver import request_for, start_change
from tests.helpers.observers import payment_intents_of, succeeded_charges
from tests.helpers.processes import PAUSED_LINE, READY_LINE, WorkerProcess
from tests.process.test_killed_workers_apply_each_effect_once import attempts_of, load_org

pytestmark = pytest.mark.integration

PAUSE_SECONDS = 4  # apply_change before its commit, still running when SIGTERM comes
GRACE_SECONDS = 30


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def health(address: str) -> tuple[int, dict]:
    answer = httpx.get(f"http://{address}/healthz", timeout=10)
    return answer.status_code, answer.json()


# A worker process and its signal; the database only records what the step did.
@pytest.mark.one_pass(on="sqlite")
async def test_sigterm_lets_the_running_step_finish(dev_env, process_env, load, gateway,
                                                      tmp_path):
    address = f"127.0.0.1:{free_port()}"
    env = process_env("drain", FAULT_PAUSE_POINTS="apply.before_commit",
                      FAULT_PAUSE_SECONDS=str(PAUSE_SECONDS),
                      GRACEFUL_SHUTDOWN_TIMEOUT=f"PT{GRACE_SECONDS}S",
                      HEALTH_BIND_ADDRESS=address)
    org = f"drain-{uuid.uuid4().hex[:6]}"
    admin = load_org(load, org, 10)
    draining = WorkerProcess(env, tmp_path / "draining.log").start()
    fresh = WorkerProcess({**env, "FAULT_PAUSE_POINTS": ""}, tmp_path / "fresh.log")
    try:
        await asyncio.to_thread(draining.wait_for, READY_LINE)
        assert health(address) == (200, {"temporal": True, "database": True})
        handle = await start_change(dev_env.client, env["TASK_QUEUE"],
                                    request_for(org, by=admin, seats=14))
        await asyncio.to_thread(draining.wait_for, PAUSED_LINE)
        # The money has moved; the change is not applied yet.
        assert [pi.status for pi in payment_intents_of(gateway, handle.id)] == ["succeeded"]

        assert draining.process is not None
        asked = time.monotonic()
        draining.process.send_signal(signal.SIGTERM)
        answers = [await asyncio.to_thread(health, address)]
        while answers[-1][0] == 200 and time.monotonic() - asked < 3:  # the signal is handled
            answers.append(await asyncio.to_thread(health, address))
        assert answers[-1] == (503, {"temporal": True, "database": True,
                                     "status": "draining"}), answers
        code = await asyncio.to_thread(draining.process.wait, GRACE_SECONDS + 10)
        took = time.monotonic() - asked
        assert code == 0, draining.output()
        assert took < GRACE_SECONDS, took
        log = draining.output()
        assert "draining: taking no new work" in log and "worker stopped" in log, log

        # Only the first attempt of the step ever ran: it finished, nothing was cut off.
        assert await attempts_of(handle, "apply_change") == 1
        fresh.start()
        result = await asyncio.wait_for(handle.result(), 60)
        assert result.status is ChangeStatus.COMPLETED, result.reason
        assert result.subscription is not None and result.subscription.seats == 14
        assert [c.payment_intent for c in succeeded_charges(gateway, workflow_id=handle.id)
                ] == [result.payment.intent_id]
    finally:
        draining.stop()
        fresh.stop()
