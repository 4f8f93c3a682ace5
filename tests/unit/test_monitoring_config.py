"""The shipped Prometheus rules and Grafana dashboard: valid for promtool, their alerts tested, and every
expression naming only metrics hezo exports (docs/metrics.md)."""

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from agent.metrics import AgentCollector, PollFigures, Snapshot
from collector.incidents.engine import IncidentEngine
from collector.ingest.pipeline import Ingest
from collector.metrics import Metrics
from tests.support import promtool
from tests.support.collector import T0, Clock, FakeAgent, migrated_engine

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "config" / "prometheus" / "hezo.rules.yml"
RULE_TESTS = ROOT / "config" / "prometheus" / "hezo.rules.test.yml"
DASHBOARD = ROOT / "config" / "grafana" / "hezo-dashboard.json"
METRIC_NAME = re.compile(r"\bhezo_[a-z0-9_]+")
SUFFIXES = {
    "counter": ("_total",),
    "histogram": ("_bucket", "_sum", "_count"),
    "summary": ("", "_sum", "_count"),
}


def exported_names(tmp_path: Path) -> set[str]:
    """Every series name the collector's and the agent's /metrics can show, read from their expositions with
    a store holding an agent, a device down and its ticket."""
    engine = migrated_engine(tmp_path)
    clock, agent = Clock(T0), FakeAgent()
    metrics = Metrics()
    metrics.watch_store(engine, now=clock)
    ingest = Ingest(engine, metrics, "hezo/v1")
    ingest.handle(*agent.birth(at=T0), T0)
    ingest.handle(*agent.state("down", at=T0), T0)
    clock.advance(60)
    IncidentEngine(
        engine, confirm_window=60, critical_response_hours=1, now=clock, metrics=metrics
    ).evaluate()
    texts = [generate_latest(metrics.registry).decode(), generate_latest(metrics.fleet_registry).decode()]
    engine.dispose()
    registry = CollectorRegistry()
    polls = PollFigures()
    polls.observe("usb", 0.1, True)
    snapshot = Snapshot(1, 100, 0, 1.0, 1, True, polls)
    registry.register(AgentCollector(lambda: snapshot, site="hq", agent="room-101-pc"))
    texts.append(generate_latest(registry).decode())
    names: set[str] = set()
    for text in texts:
        for family in text_string_to_metric_families(text):
            names.update(family.name + suffix for suffix in SUFFIXES.get(family.type, ("",)))
    return names


def dashboard_expressions() -> list[tuple[str, str]]:
    dashboard = json.loads(DASHBOARD.read_text())
    found = []
    for panel in dashboard["panels"]:
        if panel["type"] == "row":
            continue
        assert panel.get("targets"), f"panel {panel['title']!r} has no query"
        found.extend((panel["title"], target["expr"]) for target in panel["targets"])
    return found


def rule_expressions() -> list[tuple[str, str]]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [(rule["alert"], rule["expr"]) for group in groups for rule in group["rules"]]


def test_promtool_accepts_the_rules() -> None:
    result = promtool.run("check", "rules", RULES)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_fires_and_stays_quiet_as_its_tests_say() -> None:
    result = promtool.run("test", "rules", RULE_TESTS)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_has_a_test() -> None:
    tested = {
        case["alertname"]
        for test in yaml.safe_load(RULE_TESTS.read_text())["tests"]
        for case in test["alert_rule_test"]
    }
    assert {name for name, _ in rule_expressions()} <= tested


@pytest.mark.parametrize("source", [dashboard_expressions, rule_expressions], ids=["dashboard", "rules"])
def test_every_expression_names_only_metrics_hezo_exports(source: Any, tmp_path: Path) -> None:
    exported = exported_names(tmp_path)
    for title, expr in source():
        named = set(METRIC_NAME.findall(expr))
        assert named, f"{title!r}: {expr} names no hezo metric"
        assert named <= exported, f"{title!r}: {sorted(named - exported)} are not exported by hezo"


def test_every_dashboard_expression_is_valid_promql(tmp_path: Path) -> None:
    # promtool parses each expression as a recording rule: a syntax error names the panel.
    rules = [
        {"record": f"hezo_dashboard:panel_{number}", "expr": expr, "labels": {"panel": title}}
        for number, (title, expr) in enumerate(dashboard_expressions())
    ]
    path = tmp_path / "dashboard.rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    result = promtool.run("check", "rules", "--lint=none", path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_dashboard_loads_as_grafana_imports_it() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] == "hezo-fleet"
    assert [item["name"] for item in dashboard["__inputs"]] == ["DS_PROMETHEUS"]
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    for panel in dashboard["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] >= 0, f"{panel['title']!r} starts left of the grid"
        assert grid["x"] + grid["w"] <= 24, f"{panel['title']!r} is wider than the grid"
