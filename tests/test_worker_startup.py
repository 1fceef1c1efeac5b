"""Start-up refuses a broken catalog with a message naming the entry; logs carry org and workflow ids."""

import json
import logging
import os
import subprocess
import sys
from datetime import timedelta

import pytest
from pydantic import ValidationError
from temporalio.worker import UnsandboxedWorkflowRunner
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner

from workers.runtime.config import Settings
from workers.runtime.logs import JsonFormatter
from workers.runtime.worker import configured_worker


def test_a_bad_catalog_stops_the_worker_with_a_clear_message(tmp_path):
    catalog = tmp_path / "catalog.yaml"
    catalog.write_text("plans:\n  free: {name: Free, quota_gb: 5, prices: {USD: {monthly: 0, yearly: 0}}}\n")
    env = {**os.environ, "BILLING_CATALOG_PATH": str(catalog),
           "BILLING_DATABASE_URL": f"sqlite:///{tmp_path / 'b.db'}", "BILLING_TEMPORAL_ADDRESS": "127.0.0.1:1"}
    result = subprocess.run([sys.executable, "-m", "workers.runtime.worker"], env=env, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 2
    assert "catalog.plans.free.prices: missing prices in IDR" in result.stderr


def test_json_log_lines_carry_the_org_and_workflow_ids():
    record = logging.LogRecord("billing", logging.INFO, __file__, 1, "charged %s", ("INV-1",), None)
    record.temporal_activity = {"workflow_id": "org-acme", "activity_type": "charge_invoice"}
    line = json.loads(JsonFormatter().format(record))
    assert line["message"] == "charged INV-1"
    assert line["org_id"] == "acme" and line["workflow_id"] == "org-acme"


async def test_throughput_settings_reach_the_worker(stack, monkeypatch):
    monkeypatch.setenv("BILLING_WORKFLOW_SANDBOX", "false")
    monkeypatch.setenv("BILLING_MAX_CACHED_WORKFLOWS", "5000")
    settings = Settings(temporal_task_queue=stack.task_queue)
    config = configured_worker(stack.client, settings, stack.components()).config()
    assert isinstance(config["workflow_runner"], UnsandboxedWorkflowRunner)
    assert config["max_cached_workflows"] == 5000
    assert config["graceful_shutdown_timeout"] == timedelta(seconds=60)

    default = configured_worker(stack.client, Settings(workflow_sandbox=True), stack.components())
    assert isinstance(default.config()["workflow_runner"], SandboxedWorkflowRunner)


def test_a_negative_workflow_cache_is_refused_naming_the_variable(monkeypatch):
    monkeypatch.setenv("BILLING_MAX_CACHED_WORKFLOWS", "-1")
    with pytest.raises(ValidationError, match="max_cached_workflows"):
        Settings()


async def test_the_documents_queue_settings_reach_its_worker(stack, monkeypatch):
    monkeypatch.setenv("BILLING_MAIL_PER_SECOND", "2.5")
    monkeypatch.setenv("BILLING_DOCUMENTS_CONCURRENCY", "3")
    settings = Settings(temporal_task_queue=stack.task_queue)
    workers = configured_worker(stack.client, settings, stack.components())
    config = workers.documents.config()
    assert config["task_queue"] == f"{stack.task_queue}-documents"
    assert config["max_task_queue_activities_per_second"] == 2.5 and config["max_concurrent_activities"] == 3
    monkeypatch.setenv("BILLING_SERVE_DOCUMENTS", "false")   # served by python -m workers.runtime.documents
    assert configured_worker(stack.client, Settings(), stack.components()).documents is None


def test_a_mail_rate_of_zero_is_refused_naming_the_variable(monkeypatch):
    monkeypatch.setenv("BILLING_MAIL_PER_SECOND", "0")
    with pytest.raises(ValidationError, match="mail_per_second"):
        Settings()
