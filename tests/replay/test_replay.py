"""Every recorded history replays on today's OrgWorkflow without a nondeterminism error.

A failure here means a change to workflows/ would break the org workflows already running in
production (they replay their history on the new code when a worker picks them up). Guard the
change with workflow.patched() rather than re-recording: see docs/reliability.md, "Changing
workflow code safely". The histories come from tests/replay/record_histories.py, one directory per deployed version of
the workflow code: v1 before the patch "publish-before-continue-as-new", v2 with it, v3 with
"load-org-as-local-activity" too."""

from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from workflows.org import OrgWorkflow

HISTORIES = Path(__file__).resolve().parent / "histories"
FILES = sorted(HISTORIES.glob("*/*.json"))  # histories/<version>/<scenario>--<workflow id>--run<k>.json
SCENARIOS = {"trial-to-free", "renewals", "dunning-to-free", "dunning-recovered", "scheduled-downgrade",
             "trial-to-paid", "purchases"}


def load(path: Path) -> WorkflowHistory:
    _, workflow_id, _ = path.stem.split("--")
    return WorkflowHistory.from_json(workflow_id, path.read_text())


def test_every_main_path_has_recorded_histories():
    latest = max({path.parent for path in FILES}, key=lambda d: (len(d.name), d.name))
    assert {path.stem.split("--")[0] for path in FILES if path.parent == latest} >= SCENARIOS, (
        f"run `.venv/bin/python -m tests.replay.record_histories {latest.name}` to record the missing scenarios")


@pytest.mark.parametrize("path", FILES, ids=[f"{path.parent.name}/{path.stem}" for path in FILES])
async def test_history_replays_without_nondeterminism(path: Path):
    # replay_workflow raises (NondeterminismError, or the workflow task's failure) on any mismatch.
    result = await Replayer(workflows=[OrgWorkflow]).replay_workflow(load(path))
    assert result.replay_failure is None
