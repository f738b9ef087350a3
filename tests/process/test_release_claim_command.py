"""`starter.py release-claim`, the support command for a subscription held by a change that
ended without releasing it: refused while the holder runs (cancel that one), released once it was
terminated, audited, and a no-op on a free subscription. Run as support runs it, against the dev
server and a `worker.py` process."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from tests.helpers.documents import SALES, SUPPORT, org_document, write_fixture
from tests.helpers.driver import wait_for_sales
from tests.helpers.observers import (
    audit_entries,
    change_record,
    claim_of,
    refunds_of,
    succeeded_charges,
)
from tests.helpers.processes import PAUSED_LINE, WorkerProcess, change_args, run_cli

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

    started = run_cli(env, *change_args(org, "one", "--seats", "8"))
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


async def test_release_claim_needs_support_and_refunds_only_for_them(env, process_env, dev_env,
                                                                    deps, gateway, tmp_path):
    """The holder was terminated after its charge went through: release-claim refunds it. Who
    asks is checked first, against the staff directory, as the updates are: anyone but support
    is refused (exit 1) and nothing is refunded or released; a `--by` that can't be recorded is
    bad input (exit 2), refused before any refund, so the audit never fails after the money
    moved."""
    org = f"claims-paid-{uuid.uuid4().hex[:8]}"
    requester = f"admin@{org}.example"
    document = org_document(org, users=[{"email": requester, "role": "admin",
                                         "products": ["one"]}],
                            subscriptions=[{"product": "one", "plan": "enterprise", "seats": 5,
                                            "pricing_model": "flexible_user"}])
    assert run_cli(env, "load", str(write_fixture(tmp_path / "org.json", document))).code == 0
    paused_env = process_env("claims-paid", FAULT_PAUSE_POINTS="charge.after_confirm",
                             FAULT_PAUSE_SECONDS="300")
    with WorkerProcess(paused_env, tmp_path / "paused.log").running() as paused:
        started = run_cli(paused_env, "change", "--org", org, "--product", "one", "--by",
                          requester, "--seats", "8")
        assert started.code == 0, started
        paused.wait_for(f"{PAUSED_LINE} charge.after_confirm")
        handle = dev_env.client.get_workflow_handle(started.json["workflow_id"])
        await handle.terminate(reason="stuck, cleaned up by an operator")
        paused.kill()
    [charge] = succeeded_charges(gateway, workflow_id=handle.id)
    release = ["release-claim", "--org", org, "--product", "one", "--by"]

    nobody = "nobody@vendor.example"
    for by, why in [(SALES, f"{SALES} lacks role support"),
                    (nobody, f"{nobody} is not in the staff directory"),
                    (requester, f"{requester} is not in the staff directory")]:
        refused = run_cli(env, *release, by)
        assert refused.code == 1, refused
        assert why in refused.stderr and "release_claim needs" in refused.stderr, refused
        assert refused.stdout == "" and "Traceback" not in refused.stderr
    too_long = run_cli(env, *release, "s" * 240 + "@vendor.example")
    assert too_long.code == 2, too_long
    assert "--by: " in too_long.stderr and "at most 200 characters" in too_long.stderr

    # nothing moved: the charge stands, the ended change still holds the subscription
    assert refunds_of(gateway, charge.payment_intent) == []
    assert claim_of(deps, org, "one") == handle.id
    assert releases_audited(deps, org) == [
        (SALES, "release_claim", "denied"), (nobody, "release_claim", "denied"),
        (requester, "release_claim", "denied")]

    released = run_cli(env, *release, SUPPORT)
    assert released.code == 0, released
    assert released.json["released"] == handle.id and released.json["refund_id"]
    assert [r.id for r in refunds_of(gateway, charge.payment_intent)] == [
        released.json["refund_id"]]
    assert claim_of(deps, org, "one") is None
    assert releases_audited(deps, org)[3:] == [
        (SUPPORT, "compensate", "refunded"), (SUPPORT, "release_claim", "released")]


async def test_the_sweep_command_settles_an_ended_change_without_support(worker, env, dev_env,
                                                                          deps, tmp_path):
    """`starter.py sweep` runs what the schedule runs: the terminated holder's claim is freed
    without anyone naming the subscription, and the record says how the change ended."""
    org = f"claims-swept-{uuid.uuid4().hex[:8]}"
    document = org_document(org, users=[{"email": f"admin@{org}.example", "role": "admin",
                                         "products": ["one"]}],
                            subscriptions=[{"product": "one", "plan": "enterprise", "seats": 5,
                                            "pricing_model": "flexible_user",
                                            "payment_method": "offline", "card": None}])
    assert run_cli(env, "load", str(write_fixture(tmp_path / "org.json", document))).code == 0
    started = run_cli(env, *change_args(org, "one", "--seats", "8"))
    handle = dev_env.client.get_workflow_handle(started.json["workflow_id"])
    await wait_for_sales(handle)
    await handle.terminate(reason="stuck, cleaned up by an operator")

    swept = run_cli(env, "sweep")

    assert swept.code == 0, swept
    [settled] = [e for e in swept.json["settled"] if e["workflow_id"] == handle.id]
    assert settled == {"workflow_id": handle.id, "ended": "terminated",
                       "actions": ["claim_released"], "refund_id": None}
    assert claim_of(deps, org, "one") is None
    assert change_record(deps, handle.id).status == "terminated"


def releases_audited(deps, org: str) -> list[tuple[str, str, str]]:
    return [(e.actor, e.action, e.outcome) for e in audit_entries(deps, org=org)
            if e.action in ("release_claim", "compensate")]
