"""Structured logs: every line carries the org id and workflow id when there is one."""

import json
import logging
import sys
from datetime import datetime, timezone

from temporalio import activity, workflow

from activities.outages import OUTAGES


def _temporal_ids(record: logging.LogRecord) -> dict[str, str]:
    ids: dict[str, str] = {}
    for attr in ("temporal_workflow", "temporal_activity"):
        info = getattr(record, attr, None)
        if isinstance(info, dict) and info.get("workflow_id"):
            ids["workflow_id"] = info["workflow_id"]
    org_id = getattr(record, "org_id", None)
    if org_id is None and ids.get("workflow_id", "").startswith("org-"):
        org_id = ids["workflow_id"][4:]
    if org_id:
        ids["org_id"] = org_id
    return ids


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = {"ts": datetime.fromtimestamp(record.created, timezone.utc).isoformat(), "level": record.levelname,
                "logger": record.name, "message": record.getMessage(), **_temporal_ids(record)}
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        ids = " ".join(f"{k}={v}" for k, v in _temporal_ids(record).items())
        base = super().format(record)
        return f"{base} {ids}" if ids else base


def configure(log_format: str = "text", level: int = logging.INFO) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else
                         TextFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(OUTAGES)   # an outage is a line when it starts, a count, a line when it ends
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # The formatters name the org and workflow (from the records' extra): the SDK's own copy of
    # its whole info dict at the end of every message is left out.
    activity.logger.activity_info_on_message = False
    workflow.logger.workflow_info_on_message = False
