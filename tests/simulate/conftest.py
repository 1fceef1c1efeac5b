"""Running `billing simulate` as a black box: the real Typer command, in-process.

Each run is made in a thread of its own, so its `asyncio.run` never meets the event loop
pytest-asyncio keeps for the async tests of the same session. BILLING_DATABASE_URL is unset
unless a test sets it: the default is a fresh SQLite file per run."""

import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from workers.cli import app

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@dataclass(frozen=True)
class SimulateRun:
    exit_code: int
    stdout: str
    stderr: str

    @property
    def doc(self) -> dict[str, Any]:
        assert self.exit_code == 0, f"exit {self.exit_code}: {self.stderr}"
        return json.loads(self.stdout)


def simulate(*args: Any, env: dict[str, str | None] | None = None) -> SimulateRun:
    runner = CliRunner(env={"BILLING_DATABASE_URL": None, **(env or {})})

    def invoke():
        return runner.invoke(app, ["simulate", *(str(a) for a in args)])
    with ThreadPoolExecutor(max_workers=1) as pool:
        result = pool.submit(invoke).result()
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return SimulateRun(result.exit_code, result.stdout, result.stderr)


class ExampleRuns:
    """Each example scenario runs once per session; tests share the timeline."""

    def __init__(self) -> None:
        self._runs: dict[str, SimulateRun] = {}

    def run(self, name: str) -> SimulateRun:
        if name not in self._runs:
            self._runs[name] = simulate(EXAMPLES / f"{name}.yaml", "--json")
        return self._runs[name]

    def doc(self, name: str) -> dict[str, Any]:
        return self.run(name).doc


@pytest.fixture(scope="session")
def examples() -> ExampleRuns:
    return ExampleRuns()


def events(doc: dict[str, Any], type: str, **match: Any) -> list[dict[str, Any]]:
    return [e for e in doc["events"] if e["type"] == type and all(e.get(k) == v for k, v in match.items())]


def at(day: str) -> str:
    """'2026-02-28 09:00' -> the timeline's ISO form."""
    return day.replace(" ", "T") + ":00+00:00"


def brief(doc: dict[str, Any], *types: str) -> list[tuple]:
    """The timeline as (at, type, the event's key value) for the given types, in order."""
    keys = {"email": "template", "charge": "outcome", "invoice": "status", "status": "status",
            "plan_changed": "to", "user_blocked": "user", "user_unblocked": "user", "escalated": "severity",
            "action": "action", "action_rejected": "action", "dunning": "event", "storage_auto_allocated": "user",
            "storage_auto_released": "user"}
    return [(e["at"][:16].replace("T", " "), e["type"], e.get(keys.get(e["type"], "type")))
            for e in doc["events"] if not types or e["type"] in types]
