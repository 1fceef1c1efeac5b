"""Start-up refuses a broken catalog with a message naming the entry; logs carry org and workflow ids."""

import json
import logging
import os
import subprocess
import sys

from workers.logs import JsonFormatter


def test_a_bad_catalog_stops_the_worker_with_a_clear_message(tmp_path):
    catalog = tmp_path / "catalog.yaml"
    catalog.write_text("plans:\n  free: {name: Free, quota_gb: 5, prices: {USD: {monthly: 0, yearly: 0}}}\n")
    env = {**os.environ, "BILLING_CATALOG_PATH": str(catalog),
           "BILLING_DATABASE_URL": f"sqlite:///{tmp_path / 'b.db'}", "BILLING_TEMPORAL_ADDRESS": "127.0.0.1:1"}
    result = subprocess.run([sys.executable, "-m", "workers.worker"], env=env, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 2
    assert "catalog.plans.free.prices: missing prices in IDR" in result.stderr


def test_json_log_lines_carry_the_org_and_workflow_ids():
    record = logging.LogRecord("billing", logging.INFO, __file__, 1, "charged %s", ("INV-1",), None)
    record.temporal_activity = {"workflow_id": "org-acme", "activity_type": "charge_invoice"}
    line = json.loads(JsonFormatter().format(record))
    assert line["message"] == "charged INV-1"
    assert line["org_id"] == "acme" and line["workflow_id"] == "org-acme"
