"""The support runbook of the README, command by command, against the dev server and a worker
process: find the changes waiting for a person, read why, retry, cancel."""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from collections.abc import Iterator

import pytest

from tests.process_support import WorkerProcess, run_cli, write_fixture
from tests.support import DECLINED_ON_CHARGE_CARD, binary, org_document

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def env(process_env) -> dict[str, str]:
    return process_env("runbook")


@pytest.fixture(scope="module")
def worker(env, tmp_path_factory) -> Iterator[WorkerProcess]:
    with WorkerProcess(env, tmp_path_factory.mktemp("runbook") / "worker.log").running() as process:
        yield process


def waiting_for_support(env: dict[str, str], org: str) -> list[str]:
    """The runbook's first command: `temporal workflow list` with the Web UI's filter."""
    done = subprocess.run(
        [binary("temporal"), "workflow", "list", "--address", env["TEMPORAL_ADDRESS"],
         "--query", f'ChangeStep="awaiting_support" AND OrgId="{org}"', "--output", "json"],
        capture_output=True, text=True, check=True, timeout=30)
    return [item["execution"]["workflowId"] for item in json.loads(done.stdout or "[]")]


def eventually(probe, expected, timeout: float = 15):
    deadline = time.monotonic() + timeout
    while (value := probe()) != expected and time.monotonic() < deadline:
        time.sleep(0.3)
    return value


def test_find_read_retry_and_cancel_a_stuck_change(env, worker, tmp_path):
    org = f"runbook-{uuid.uuid4().hex[:6]}"
    document = org_document(org, users=[{"email": f"admin@{org}.example", "role": "admin",
                                         "products": ["one"]}],
                            subscriptions=[{"product": "one", "plan": "enterprise", "seats": 10,
                                            "pricing_model": "flexible_user",
                                            "card": DECLINED_ON_CHARGE_CARD}])
    assert run_cli(env, "load", str(write_fixture(tmp_path / "org.json", document))).code == 0
    started = run_cli(env, "change", "--org", org, "--product", "one", "--by",
                      f"admin@{org}.example", "--seats", "12", "--wait")
    assert started.code == 3, started
    workflow_id = started.json["workflow_id"]

    assert eventually(lambda: waiting_for_support(env, org), [workflow_id]) == [workflow_id]

    status = run_cli(env, "status", workflow_id)
    assert status.code == 0 and status.json["state"] == "awaiting_support"
    assert "CardDeclined" in status.json["last_error"]

    retried = run_cli(env, "retry", workflow_id)
    assert retried.code == 0 and "retrying charge" in retried.stdout
    assert eventually(lambda: sum(1 for step in run_cli(env, "status", workflow_id).json[
        "history"] if step["step"] == "charge" and step["outcome"] == "failed"), 2) == 2

    cancelled = run_cli(env, "cancel", workflow_id)
    assert cancelled.code == 0 and "nothing was charged" in cancelled.stdout
    final = run_cli(env, "status", workflow_id).json
    assert final["result"]["status"] == "cancelled"
    assert eventually(lambda: waiting_for_support(env, org), []) == []
