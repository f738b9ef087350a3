"""What an operator's Prometheus scrapes from a worker: the SDK's own metrics and the service's
counters (changes by status, charges, time in each step) and the gauges its sweep sets; that
they are every metric the Grafana dashboard and the alerting rules read (deploy/); the worker's
JSON log lines, which carry workflow id and step and never a secret, card number or email
address."""

from __future__ import annotations

import json
import re
import urllib.request
import uuid
from collections.abc import Iterator

import pytest

from subchange.dev.devstack import free_port
from tests.helpers.dashboards import all_metric_names
from tests.helpers.documents import GOOD_CARD, org_document, write_fixture
from tests.helpers.processes import WorkerProcess, change_args, run_cli

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def metrics_port() -> int:
    return free_port()


@pytest.fixture(scope="module")
def env(process_env, metrics_port) -> dict[str, str]:
    return process_env("metrics", METRICS_BIND_ADDRESS=f"127.0.0.1:{metrics_port}",
                       LOG_FORMAT="json")


@pytest.fixture(scope="module")
def worker(env, tmp_path_factory) -> Iterator[WorkerProcess]:
    log = tmp_path_factory.mktemp("metrics") / "worker.log"
    with WorkerProcess(env, log).running() as process:
        yield process


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        return response.read().decode()


def exported_names(text: str) -> set[str]:
    """The name of every sample served (a histogram's _bucket, _sum and _count among them)."""
    return {re.split(r"[{ ]", line, maxsplit=1)[0] for line in text.splitlines()
            if line and not line.startswith("#")}


# What the dashboard and the alerts read that this worker's run (two changes, one sweep) has
# no occasion to record: the SDK reports a failure only once one happens; the rest need a refund,
# a webhook delivery, or a change ended from outside for the sweep to find. The deploy room
# checks that the code records each (tests/deploy/test_dashboard_queries_exported_metrics.py).
NOT_IN_THIS_RUN = {"temporal_workflow_failed", "temporal_activity_execution_failed",
                   "subchange_refunds", "subchange_webhook_deliveries", "subchange_sweep_found",
                   "subchange_sweep_settled"}


def sample(text: str, name: str, **labels: str) -> float:
    """The value of one Prometheus sample whose labels include `labels` (0 when absent)."""
    total = 0.0
    for line in text.splitlines():
        match = re.match(rf"^{name}(?:\{{(.*)\}})? (\S+)$", line)
        if match and all(f'{k}="{v}"' in (match.group(1) or "") for k, v in labels.items()):
            total += float(match.group(2))
    return total


def test_a_charged_change_shows_in_the_service_and_sdk_metrics(env, worker, metrics_port,
                                                               tmp_path):
    org = f"metrics-{uuid.uuid4().hex[:6]}"
    document = org_document(org, users=[{"email": f"admin@{org}.example", "role": "admin",
                                         "products": ["one"]}],
                            subscriptions=[{"product": "one", "plan": "enterprise", "seats": 10,
                                            "pricing_model": "flexible_user"}])
    assert run_cli(env, "load", str(write_fixture(tmp_path / "org.json", document))).code == 0
    before = scrape(metrics_port)

    for seats in ("12", "12"):  # the second is a no-op: rejected
        run_cli(env, *change_args(org, "one", "--seats", seats, "--wait"))

    after = scrape(metrics_port)
    run_cli(env, "sweep")  # its gauges: what waits (for support, for payment), what it left
    swept = scrape(metrics_port)

    def delta(name: str, **labels: str) -> float:
        return sample(after, name, **labels) - sample(before, name, **labels)

    assert delta("subchange_changes", status="completed", product="one", kind="seats") == 1
    assert delta("subchange_changes", status="rejected", product="one", kind="seats") == 1
    assert delta("subchange_charges", currency="JPY") == 1
    assert delta("subchange_step_duration_count", step="charge", outcome="ok") == 1
    assert delta("subchange_step_duration_count", step="validate_change", outcome="ok") == 2
    assert sample(after, "temporal_workflow_completed") >= 2  # the SDK's own metrics
    assert delta("subchange_changes_started", product="one", kind="seats") == 2
    for waiting_for in ("support", "payment"):  # counted by the sweep, zero or more
        assert re.search(rf'^subchange_changes_waiting{{.*waiting_for="{waiting_for}".*}} \d+$',
                         swept, re.MULTILINE), waiting_for
    assert sample(swept, "subchange_sweep_counted_at") > 1.7e9

    # Every metric a panel or an alert reads is served (or has no occasion here).
    unserved = {name: sorted(places) for name, places in all_metric_names().items()
                if name not in exported_names(swept) and name not in NOT_IN_THIS_RUN}
    assert unserved == {}

    log = worker.output()
    # No keys, card numbers or email addresses.
    assert "sk_test" not in log and GOOD_CARD not in log and "@" not in log
    records = [json.loads(line) for line in log.splitlines() if line.strip()]  # JSON lines only
    steps = {(r["temporal_activity"]["activity_type"], r["message"].split(" ")[0])
             for r in records if "temporal_activity" in r}
    assert {("charge", "charged"), ("apply_change", "applied:"),
            ("email_invoice", "invoice")} <= steps
    charged = next(r for r in records if r.get("temporal_activity", {}).get("activity_type")
                   == "charge")
    assert charged["temporal_activity"]["workflow_id"].startswith("change-")
    assert charged["level"] == "INFO" and charged["time"]
