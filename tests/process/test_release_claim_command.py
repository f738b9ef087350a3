"""`starter.py release-claim`, the support command for a subscription held by a change that
ended without releasing it: refused while the holder runs (cancel that one), released once it was
terminated, audited, and a no-op on a free subscription. Run as support runs it, against the dev
server and a `worker.py` process."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from tests.helpers.documents import org_document, write_fixture
from tests.helpers.driver import wait_for_sales
from tests.helpers.observers import audit_entries, claim_of
from tests.helpers.processes import WorkerProcess, run_cli

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def env(process_env) -> dict[str, str]:
    return process_env("claims")


@pytest.fixture(scope="module")
def worker(env, tmp_path_factory) -> Iterator[WorkerProcess]:
    with WorkerProcess(env, tmp_path_factory.mktemp("claims") / "worker.log").running() as w:
        yield w


async def test_release_claim_frees_only_what_an_ended_change_held(worker, env, dev_env, deps,
                                                                 tmp_path):
    org = f"claims-{uuid.uuid4().hex[:8]}"
    document = org_document(org, users=[{"email": f"admin@{org}.example", "role": "admin",
                                         "products": ["one"]}],
                            subscriptions=[{"product": "one", "plan": "enterprise", "seats": 5,
                                            "pricing_model": "flexible_user",
                                            "payment_method": "offline", "card": None}])
    assert run_cli(env, "load", str(write_fixture(tmp_path / "org.json", document))).code == 0
    release = ["release-claim", "--org", org, "--product", "one", "--by", "support@vendor.example"]

    free = run_cli(env, *release)
    assert (free.code, free.json["released"]) == (0, None)

    started = run_cli(env, "change", "--org", org, "--product", "one", "--by",
                      f"admin@{org}.example", "--seats", "8")
    assert started.code == 0, started
    handle = dev_env.client.get_workflow_handle(started.json["workflow_id"])
    await wait_for_sales(handle)

    running = run_cli(env, *release)
    assert running.code == 1
    assert f"{handle.id} is still running" in running.stderr
    assert f"starter.py cancel {handle.id}" in running.stderr
    assert claim_of(deps, org, "one") == handle.id

    await handle.terminate(reason="stuck, cleaned up by an operator")
    released = run_cli(env, *release)

    assert released.code == 0, released
    assert released.json == {"org_id": org, "product": "one", "released": handle.id,
                             "holder_ended": "terminated", "refund_id": None}
    assert claim_of(deps, org, "one") is None
    [entry] = [e for e in audit_entries(deps, org=org) if e.action == "release_claim"]
    assert (entry.actor, entry.outcome) == ("support@vendor.example", "released")
    assert handle.id in entry.detail

    unknown = run_cli(env, "release-claim", "--org", "nobody", "--product", "one", "--by",
                      "support@vendor.example")
    assert unknown.code == 2 and "--org/--product" in unknown.stderr
