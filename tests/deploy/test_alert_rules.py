"""The Prometheus alerting rules (deploy/prometheus/alerts.yml), their routing and their panels.

* ``promtool check rules`` / ``check config`` and the unit tests of ``promtool test rules``
  (deploy/prometheus/alerts*.test.yml), and ``amtool check-config`` / ``config routes test``
  on the Alertmanager's routes. promtool comes with Debian's ``prometheus`` package, amtool with
  ``prometheus-alertmanager`` (``apt-get install --no-install-recommends prometheus
  prometheus-alertmanager``): skipped without them, a failure under ``CI=true``.
* Without any tool: every alert is unit-tested firing and quiet, has a panel on the dashboard
  that queries its metrics, carries the labels the Alertmanager routes on, and the compose
  stack loads the rules and runs the Alertmanager.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
PROMETHEUS = DEPLOY / "prometheus"
RULES = PROMETHEUS / "alerts.yml"
# alerts.test.yml (minutes, evaluated every minute) and alerts.daily.test.yml (days, every 5 minutes)
RULE_TESTS = sorted(PROMETHEUS.glob("alerts*.test.yml"))
ALERTMANAGER = PROMETHEUS / "alertmanager.yml"
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "billing.json"

# The list: each must exist (more may).
REQUIRED_ALERTS = {
    "BillingActivityFailureRateHigh",          # activity failure rate
    "BillingWorkflowTaskFailures",             # workflow task failures
    "BillingActivityScheduleToStartSlow",      # schedule-to-start latency
    "BillingWorkflowTaskScheduleToStartSlow",
    "BillingEscalationFirstResponseOverdue",   # escalations past their first-response deadline
    "BillingPastDueOrgsGrowing",               # past-due orgs growing
    "BillingReconciliationStale",              # reconciliation failing
    "BillingReconciliationFailed",
    "BillingNoWorkerPolling",                  # no worker polling
}
TEAMS = {"billing-ops", "billing-staff"}
SEVERITIES = {"critical", "warning"}
METRIC = re.compile(r"\b(?:temporal|billing)_[a-z0-9_]+")


def _tool(name: str, package: str) -> str:
    exe = shutil.which(name)
    if exe is None:
        message = f"{name} not found (apt-get install --no-install-recommends {package})"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{message}: required when CI=true")
        pytest.skip(message)
    return exe


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=PROMETHEUS, capture_output=True, text=True, timeout=120)


def _alerts() -> list[dict]:
    groups = yaml.safe_load(RULES.read_text(encoding="utf-8"))["groups"]
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]


# --------------------------------------------------------------------------
# promtool
# --------------------------------------------------------------------------


def test_promtool_check_rules():
    proc = _run(_tool("promtool", "prometheus"), "check", "rules", RULES.name)
    assert proc.returncode == 0, f"promtool check rules failed:\n{proc.stdout}\n{proc.stderr}"


def test_promtool_check_config_loads_the_rules():
    proc = _run(_tool("promtool", "prometheus"), "check", "config", "prometheus.yml")
    assert proc.returncode == 0, f"promtool check config failed:\n{proc.stdout}\n{proc.stderr}"
    assert "1 rule files found" in proc.stdout


def test_promtool_rule_unit_tests():
    assert len(RULE_TESTS) == 2, RULE_TESTS
    proc = _run(_tool("promtool", "prometheus"), "test", "rules", *(p.name for p in RULE_TESTS))
    assert proc.returncode == 0, f"promtool test rules failed:\n{proc.stdout}\n{proc.stderr}"


# --------------------------------------------------------------------------
# the rules and their unit tests
# --------------------------------------------------------------------------


def test_required_alerts_exist_with_routing_labels():
    alerts = _alerts()
    names = [a["alert"] for a in alerts]
    assert len(names) == len(set(names)), "alert names must be unique"
    assert REQUIRED_ALERTS <= set(names), f"missing {sorted(REQUIRED_ALERTS - set(names))}"
    for alert in alerts:
        labels = alert["labels"]
        assert labels.get("team") in TEAMS, f"{alert['alert']}: team must be one of {TEAMS}"
        assert labels.get("severity") in SEVERITIES, f"{alert['alert']}: severity must be one of {SEVERITIES}"
        assert {"summary", "description", "dashboard"} <= set(alert["annotations"]), alert["alert"]


def test_every_alert_is_unit_tested_firing_and_quiet():
    fires, quiet = set(), set()
    for path in RULE_TESTS:
        spec = yaml.safe_load(path.read_text(encoding="utf-8"))
        assert spec["rule_files"] == [RULES.name], path.name
        for case in spec["tests"]:
            for check in case.get("alert_rule_test", []):
                (fires if check.get("exp_alerts") else quiet).add(check["alertname"])
    names = {a["alert"] for a in _alerts()}
    assert names <= fires, f"never expected to fire: {sorted(names - fires)}"
    assert names <= quiet, f"never expected to stay quiet: {sorted(names - quiet)}"
    assert fires | quiet <= names, f"tests of unknown alerts: {sorted((fires | quiet) - names)}"


def test_every_alert_has_a_panel_querying_its_metrics():
    panels = {p["id"]: p for p in json.loads(DASHBOARD.read_text(encoding="utf-8"))["panels"]}
    for alert in _alerts():
        match = re.fullmatch(r"/d/billing-pipeline/billing-pipeline\?viewPanel=(\d+)", alert["annotations"]["dashboard"])
        assert match, f"{alert['alert']}: dashboard annotation must link a panel of billing-pipeline"
        panel = panels.get(int(match.group(1)))
        assert panel is not None and panel["type"] != "row", f"{alert['alert']}: no panel {match.group(1)}"
        assert alert["alert"] in panel["description"], f"panel {panel['id']} does not name {alert['alert']}"
        queried = " ".join(t["expr"] for t in panel["targets"])
        for metric in set(METRIC.findall(alert["expr"])):
            assert metric in queried, f"{alert['alert']}: panel {panel['id']} does not query {metric}"


# --------------------------------------------------------------------------
# routing and loading
# --------------------------------------------------------------------------


def test_alertmanager_routes_each_team_to_its_receiver():
    config = yaml.safe_load(ALERTMANAGER.read_text(encoding="utf-8"))
    receivers = {r["name"] for r in config["receivers"]}
    route = config["route"]
    assert route["receiver"] in receivers
    routes = [(set(r["matchers"]), r["receiver"]) for r in route["routes"]]
    for matchers, receiver in routes:
        assert receiver in receivers
    assert ({'team="billing-staff"'}, "billing-staff") in routes
    assert ({'team="billing-ops"', 'severity="critical"'}, "billing-ops-page") in routes
    assert ({'team="billing-ops"'}, "billing-ops") in routes


def test_alertmanager_config_with_amtool():
    exe = _tool("amtool", "prometheus-alertmanager")
    proc = _run(exe, "check-config", ALERTMANAGER.name)
    assert proc.returncode == 0, f"amtool check-config failed:\n{proc.stdout}\n{proc.stderr}"
    for labels, receiver in ((["team=billing-staff", "severity=critical"], "billing-staff"),
                             (["team=billing-ops", "severity=critical"], "billing-ops-page"),
                             (["team=billing-ops", "severity=warning"], "billing-ops")):
        proc = _run(exe, "config", "routes", "test", f"--config.file={ALERTMANAGER.name}", *labels)
        assert proc.stdout.strip() == receiver, f"{labels}: {proc.stdout}{proc.stderr}"


def test_compose_loads_the_rules_and_runs_the_alertmanager():
    compose = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text(encoding="utf-8"))
    config = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text(encoding="utf-8"))
    mounts = dict(v.split(":")[:2] for v in compose["services"]["prometheus"]["volumes"] if v.startswith("./"))
    config_dir = Path(mounts["./prometheus/prometheus.yml"]).parent
    for rule_file in config["rule_files"]:
        assert mounts.get(f"./prometheus/{rule_file}") == str(config_dir / rule_file), f"{rule_file} not mounted"
    assert [job["job_name"] for job in config["scrape_configs"]].count("billing-worker") == 1, \
        "BillingNoWorkerPolling selects job=billing-worker"
    targets = [t for am in config["alerting"]["alertmanagers"] for sc in am["static_configs"] for t in sc["targets"]]
    assert targets == ["alertmanager:9093"]
    alertmanager = compose["services"]["alertmanager"]
    assert alertmanager["image"].startswith("prom/alertmanager:")
    am_mounts = dict(v.split(":")[:2] for v in alertmanager["volumes"] if v.startswith("./"))
    assert f"--config.file={am_mounts['./prometheus/alertmanager.yml']}" in alertmanager["command"]


def test_readme_says_where_alerts_route():
    readme = (DEPLOY / "README.md").read_text(encoding="utf-8")
    assert "## Alerts" in readme
    section = readme.split("## Alerts", 1)[1].split("\n## ", 1)[0]
    for name in REQUIRED_ALERTS | {"billing-ops-page", "billing-ops", "billing-staff", "promtool test rules"}:
        assert name in section, f"deploy/README.md, Alerts: {name} not mentioned"
