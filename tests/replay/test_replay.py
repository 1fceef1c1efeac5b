"""Every recorded history replays on today's OrgWorkflow without a nondeterminism error.

A failure here means a change to workflows/ would break the org workflows already running in
production (they replay their history on the new code when a worker picks them up). Guard the
change with workflow.patched() rather than re-recording: see docs/reliability.md, "Replay". The
histories come from tests/replay/record_histories.py, one directory per deployed version of the
workflow code: 1.0 is the baseline (no patch, no compatibility code before it)."""

from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer
from temporalio.workflow import NondeterminismError

from tests.replay.record_histories import SCENARIOS
from tests.replay.unpatched import UnpatchedChange
from workflows import versions
from workflows.org import OrgWorkflow

HISTORIES = Path(__file__).resolve().parent / "histories"
FILES = sorted(HISTORIES.glob("*/*.json"))  # histories/<version>/<scenario>--<workflow id>--run<k>.json


def load(path: Path) -> WorkflowHistory:
    _, workflow_id, _ = path.stem.split("--")
    return WorkflowHistory.from_json(workflow_id, path.read_text())


def test_the_versions_recorded_are_those_the_code_replays_and_the_latest_records_every_path():
    recorded = sorted({path.parent.name for path in FILES}, key=versions.parse)
    assert (recorded[0], recorded[-1]) == (versions.OLDEST_REPLAYED, versions.CURRENT)
    paths = {path.stem.split("--")[0] for path in FILES if path.parent.name == versions.CURRENT}
    assert paths == set(SCENARIOS), (
        f"run `.venv/bin/python -m tests.replay.record_histories {versions.CURRENT}` to record what is missing")


@pytest.mark.parametrize("path", FILES, ids=[f"{path.parent.name}/{path.stem}" for path in FILES])
async def test_history_replays_without_nondeterminism(path: Path):
    # replay_workflow raises (NondeterminismError, or the workflow task's failure) on any mismatch.
    result = await Replayer(workflows=[OrgWorkflow]).replay_workflow(load(path))
    assert result.replay_failure is None


async def test_a_command_change_without_a_patch_fails_the_replay():
    history = load(HISTORIES / versions.CURRENT / "renewals--org-replay-renewal--run1.json")
    result = await Replayer(workflows=[UnpatchedChange]).replay_workflow(history, raise_on_replay_failure=False)
    assert isinstance(result.replay_failure, NondeterminismError)
