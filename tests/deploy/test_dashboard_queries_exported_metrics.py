"""The Grafana dashboard (deploy/grafana/subchange-dashboard.json) and the alerting rules
(deploy/prometheus/alerts.yml) read what the workers export: every query parses as PromQL and
names only metrics the code records (the service's) or the Temporal SDK reports (its own). A
renamed metric would otherwise leave a panel empty and an alert silent, with no error anywhere.

This reads files only; tests/process/test_worker_metrics_and_logs.py checks the same names
against what a running worker's /metrics really serves."""

from __future__ import annotations

import functools
import re
from pathlib import Path

import pytest
import temporalio.bridge

from tests.helpers.dashboards import (
    HISTOGRAM_SERIES,
    ROOT,
    alert_rules,
    all_metric_names,
    dashboard,
    metric_names,
    queries,
)

SERVICE_SOURCES = ("activities", "workflows", "subchange")
# activity.metric_meter().create_counter("subchange_charges", ...), create_histogram_timedelta(
RECORDED = re.compile(r"\.create_(?:counter|gauge|histogram)\w*\(\s*\"(subchange_\w+)\"")


def recorded_by_the_service() -> set[str]:
    names = set()
    for package in SERVICE_SOURCES:
        for path in (ROOT / package).rglob("*.py"):
            names.update(RECORDED.findall(path.read_text(encoding="utf-8")))
    return names


@functools.cache
def sdk_library() -> bytes:
    [library] = Path(temporalio.bridge.__file__).parent.glob("temporal_sdk_bridge*")
    return library.read_bytes()


def reported_by_the_sdk(name: str) -> bool:
    """Whether the SDK's core library (its Rust bridge, which names every metric it reports
    without the `temporal_` prefix the Prometheus exporter adds) holds this metric's name."""
    return name.startswith("temporal_") and name.removeprefix("temporal_").encode() in sdk_library()


def declared(name: str, service: set[str]) -> bool:
    bases = {name} | {name.removesuffix(s) for s in HISTOGRAM_SERIES if name.endswith(s)}
    return any(base in service or reported_by_the_sdk(base) for base in bases)


@pytest.mark.parametrize("place", sorted(queries()))
def test_every_query_parses_and_names_its_metrics(place):
    names = metric_names(queries()[place])
    assert names and None not in names, f"{place}: every selector names its metric"


def test_every_metric_queried_is_recorded_by_the_service_or_the_sdk():
    service = recorded_by_the_service()
    unknown = {name: sorted(places) for name, places in all_metric_names().items()
               if not declared(name, service)}
    assert unknown == {}


def test_the_dashboard_asks_for_its_prometheus_on_import():
    model = dashboard()
    assert [item["name"] for item in model["__inputs"]] == ["DS_PROMETHEUS"]
    assert model["schemaVersion"] >= 39
    panels = model["panels"]
    assert len({panel["id"] for panel in panels}) == len(panels)
    for panel in panels:
        if panel["type"] == "row":
            continue
        assert panel["datasource"]["uid"] == "${DS_PROMETHEUS}", panel["title"]
        assert all(target["datasource"]["uid"] == "${DS_PROMETHEUS}"
                   for target in panel["targets"]), panel["title"]


def test_every_alert_links_a_runbook_section_that_exists():
    headings = {re.sub(r"[^\w\- ]", "", line.lstrip("#").strip().lower()).replace(" ", "-")
                for line in (ROOT / "docs" / "runbook.md").read_text().splitlines()
                if line.startswith("#")}
    for rule in alert_rules():
        page, _, anchor = rule["annotations"]["runbook"].partition("#")
        assert page == "docs/runbook.md" and anchor in headings, rule["alert"]
