"""`billing simulate` as a separate process, stopped from outside: a wall-clock limit, signals,
SIGKILL. Whatever stops it, no test server process and no folder of the run stay behind."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.simulate.conftest import simulate
from workers.simulate.guard import scratch_dir

LONG = """\
start: "2026-01-31T09:00:00+00:00"
until: "P8Y"
org:
  id: longrun
  admin_email: admin@long.test
  plan: standard
  cycle: monthly
  card: "4242424242424242"
  users: [{email: admin@long.test, storage_gb: 1}, {email: b@long.test, storage_gb: 2}]
"""

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")


def start_simulate(tmp_path: Path, **env: str) -> subprocess.Popen:
    path = tmp_path / "long.yaml"
    path.write_text(LONG, encoding="utf-8")
    environment = {k: v for k, v in os.environ.items() if k != "BILLING_DATABASE_URL"}
    return subprocess.Popen([sys.executable, "-m", "workers.cli", "simulate", str(path), "--json"],
                            env={**environment, **env}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=Path(__file__).resolve().parents[2])


def _stat(pid: int) -> tuple[int, str, int] | None:
    """(parent pid, state, start time) of a live process."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text.rsplit(")", 1)[1].split()
    return int(fields[1]), fields[0], int(fields[19])


def descendants(root: int) -> dict[int, tuple[int, str]]:
    """Every process below `root`: pid -> (start time, command line)."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (stat := _stat(int(entry.name))) is not None:
            parents.setdefault(stat[0], []).append(int(entry.name))
    found, todo = {}, [root]
    while todo:
        for child in parents.get(todo.pop(), []):
            try:
                command = Path(f"/proc/{child}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            stat = _stat(child)
            if stat is not None:
                found[child] = (stat[2], command)
                todo.append(child)
    return found


def wait_for_the_test_server(proc: subprocess.Popen, timeout: float = 60) -> dict[int, tuple[int, str]]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        below = descendants(proc.pid)
        if any("temporal-test-server" in command for _, command in below.values()):
            return below
        time.sleep(0.1)
    raise AssertionError("the test server did not start")


def run_folder(below: dict[int, tuple[int, str]]) -> Path:
    """The run's folder, as its test server's guard names it on its command line."""
    for _, command in below.values():
        for word in command.split():
            if word.endswith("test_server_guard.py"):
                return Path(word).parent
    raise AssertionError(f"no guard among {below}")


def assert_all_gone(below: dict[int, tuple[int, str]], folder: Path, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    left = below
    while time.monotonic() < deadline:
        # A zombie has ended (its new parent reaps it); a pid with another start time is reused.
        left = {pid: command for pid, (start, command) in below.items()
                if (stat := _stat(pid)) is not None and stat[2] == start and stat[1] != "Z"}
        if not left and not folder.exists():
            return
        time.sleep(0.1)
    assert not left, f"processes left behind: {left}"
    assert not folder.exists(), f"folder left behind: {folder} {list(folder.iterdir())}"


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_stops_the_run_and_leaves_nothing_behind(tmp_path, signum):
    proc = start_simulate(tmp_path)
    try:
        below = wait_for_the_test_server(proc)
        folder = run_folder(below)
        assert str(folder.parent) == scratch_dir()   # /dev/shm where the machine has it
        time.sleep(1.5)   # midway: the org's workflow is running
        assert proc.poll() is None
        proc.send_signal(signum)
        out, err = proc.communicate(timeout=40)
    finally:
        proc.kill()
    assert proc.returncode == 128 + signum, err
    assert err == f"simulation stopped: interrupted by {signal.Signals(signum).name}\n"
    assert out == ""
    assert_all_gone(below, folder)


def test_sigkill_of_simulate_leaves_no_test_server_or_folder(tmp_path):
    """SIGKILL cannot be caught: the test server's guard sees simulate gone and cleans up."""
    proc = start_simulate(tmp_path)
    try:
        below = wait_for_the_test_server(proc)
        folder = run_folder(below)
        time.sleep(1.0)
        proc.kill()
        proc.communicate(timeout=20)
    finally:
        proc.kill()
    assert proc.returncode == -signal.SIGKILL
    assert_all_gone(below, folder)


def test_the_wall_clock_limit_stops_the_run(tmp_path):
    started = time.monotonic()
    proc = start_simulate(tmp_path, BILLING_SIMULATE_TIMEOUT="3")
    try:
        below = wait_for_the_test_server(proc)
        folder = run_folder(below)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 3, err
    assert err == ("simulation stopped: the run took longer than its wall-clock limit of 3 s; "
                   "set BILLING_SIMULATE_TIMEOUT (seconds) to allow more\n")
    assert out == ""
    assert time.monotonic() - started < 30
    assert_all_gone(below, folder)


def test_the_wall_clock_limit_holds_inside_another_process_too(tmp_path):
    """Run in a thread (no signals there), as the test suite and tools call it."""
    path = tmp_path / "long.yaml"
    path.write_text(LONG, encoding="utf-8")
    started = time.monotonic()
    result = simulate(path, "--json", env={"BILLING_SIMULATE_TIMEOUT": "2"})
    assert result.exit_code == 3, result.stderr
    assert "wall-clock limit of 2 s" in result.stderr and "BILLING_SIMULATE_TIMEOUT" in result.stderr
    assert time.monotonic() - started < 30


@pytest.mark.parametrize("value", ["abc", "0", "-5", "inf", "nan"])
def test_a_bad_wall_clock_limit_is_refused(tmp_path, value):
    path = tmp_path / "long.yaml"
    path.write_text(LONG, encoding="utf-8")
    result = simulate(path, "--json", env={"BILLING_SIMULATE_TIMEOUT": value})
    assert result.exit_code == 2, result.stderr
    assert result.stderr == (f"simulation refused: BILLING_SIMULATE_TIMEOUT: expected a number of seconds above 0, "
                             f"got {value!r}\n")
