"""`make run` with one of its ports busy: one line naming the port, what holds it and how to move
it, and nothing started (it was a bind traceback, or a dev server exiting behind its log)."""

import os
import socket
import subprocess
import sys

import pytest


@pytest.fixture
def busy_port():
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        yield listener.getsockname()[1]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.parametrize("which, what, moved_by", [
    ("smtp", "the SMTP capture", "BILLING_SMTP_PORT"),
    ("temporal", "the Temporal dev server", "BILLING_TEMPORAL_ADDRESS"),
    ("ui", "the Temporal Web UI", "python -m workers.stack.embedded --ui-port N")])
def test_a_busy_port_stops_make_run_in_one_line_naming_it_and_its_holder(tmp_path, busy_port, which, what, moved_by):
    ports = {name: busy_port if name == which else free_port() for name in ("smtp", "temporal", "ui")}
    env = {**os.environ, "BILLING_SMTP_PORT": str(ports["smtp"]),
           "BILLING_TEMPORAL_ADDRESS": f"127.0.0.1:{ports['temporal']}"}
    env.pop("BILLING_DATABASE_URL", None)
    result = subprocess.run([sys.executable, "-m", "workers.stack.embedded", "--var", str(tmp_path / "var"),
                             "--ui-port", str(ports["ui"])], capture_output=True, text=True, env=env, timeout=60)
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr == (f"cannot start: port {busy_port} on 127.0.0.1 ({what}) is in use by PID {os.getpid()} "
                             f"({open('/proc/self/comm').read().strip()}); stop it, or use another port: {moved_by}\n")
    assert not (tmp_path / "var" / "temporal.log").exists()   # the dev server was not started
