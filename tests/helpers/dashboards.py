"""The PromQL of the Grafana dashboard (deploy/grafana/) and of the alerting rules
(deploy/prometheus/), and the metric names each query reads, by a PromQL parser."""

from __future__ import annotations

import json
from pathlib import Path

import promql_parser
import yaml

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "deploy" / "grafana" / "subchange-dashboard.json"
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yml"
# What Prometheus exposes of one histogram besides its name.
HISTOGRAM_SERIES = ("_bucket", "_sum", "_count")


def dashboard() -> dict:
    return json.loads(DASHBOARD.read_text(encoding="utf-8"))


def alert_rules() -> list[dict]:
    groups = yaml.safe_load(ALERTS.read_text(encoding="utf-8"))["groups"]
    return [rule for group in groups for rule in group["rules"]]


def queries() -> dict[str, str]:
    """Every PromQL expression, by where it is: 'panel <title> <refId>' or 'alert <name>'."""
    found = {}
    for panel in dashboard()["panels"]:
        for target in panel.get("targets", []):
            found[f"panel {panel['title']!r} {target['refId']}"] = target["expr"]
    for rule in alert_rules():
        found[f"alert {rule.get('alert') or rule['record']}"] = rule["expr"]
    return found


def metric_names(expression: str) -> set[str]:
    """The metrics an expression selects. A selector without a metric name (`{job="x"}`) is
    named None, which no worker exports, so a test reading these fails on it."""
    names: set[str] = set()

    def visit(node: promql_parser.Expr) -> None:
        if isinstance(node, promql_parser.VectorSelector):
            names.add(node.name)

    promql_parser.walk(promql_parser.parse(expression), visit)
    return names


def as_exported(name: str, exported: set[str]) -> str:
    """The exported metric a queried name reads: itself, or the histogram whose bucket, sum or
    count it is."""
    for suffix in HISTOGRAM_SERIES:
        if name.endswith(suffix) and name.removesuffix(suffix) in exported:
            return name.removesuffix(suffix)
    return name


def all_metric_names() -> dict[str, set[str]]:
    """Each metric name the dashboard and the alerts read, with where they read it."""
    where: dict[str, set[str]] = {}
    for place, expression in queries().items():
        for name in metric_names(expression):
            where.setdefault(name, set()).add(place)
    return where
