"""Where a simulation's files live, and the guard that keeps its test server from outliving it.

The test server runs under a small guard process that stops it, and removes the run's folder,
should the simulation die without cleaning up (SIGKILL)."""

import inspect
import os
import shlex
import sys
import tempfile
from pathlib import Path


def scratch_dir() -> str | None:
    """Memory-backed storage for the run's folder (the throwaway database) when the machine has
    it and may run programs from it (the test server's guard is started from there)."""
    for folder in ("/dev/shm", tempfile.gettempdir()):
        if os.path.isdir(folder) and os.access(folder, os.W_OK) and _can_execute_from(folder):
            return folder
    return None


def _can_execute_from(folder: str) -> bool:
    try:
        return not os.statvfs(folder).f_flag & os.ST_NOEXEC
    except (OSError, AttributeError):
        return False


def _guard(argv: list[str]) -> None:
    """The test server's guard: a process of its own between Temporal's core (which starts it as
    the test server) and the server, so the server cannot outlive this simulation.

    The core stops the server by killing what it started: the guard, whose death kills the
    server (PR_SET_PDEATHSIG). Should the simulation itself die without stopping the server
    (SIGKILL, a hard exit), the guard sees its parent gone, stops the server and removes the
    run's folder. It runs in a session of its own, so a Ctrl-C in the terminal reaches only the
    simulation, which then shuts the server down in order. Written out and run with `python -I -S`:
    standard library only."""
    import ctypes
    import os
    import shutil
    import signal
    import sys
    import time
    server, parent, folder, args = argv[0], int(argv[1]), argv[2], argv[3:]
    try:
        os.setsid()
    except OSError:
        pass  # already a group leader: Ctrl-C reaches the server too, which the simulation then finds gone
    guard = os.getpid()
    child = os.fork()
    if child == 0:
        try:
            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        except (AttributeError, OSError):
            pass  # not Linux: the guard still stops the server when the simulation dies
        if os.getppid() != guard:
            os._exit(1)
        os.execv(server, [server, *args])

    def forward(signum, _frame):  # noqa: ANN001
        try:
            os.kill(child, signum)
        except ProcessLookupError:
            pass
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, forward)
    while True:
        done, status = os.waitpid(child, os.WNOHANG)
        if done:
            sys.exit(os.waitstatus_to_exitcode(status) % 256)
        if os.getppid() != parent:
            try:
                os.kill(child, signal.SIGKILL)
                os.waitpid(child, 0)
            except ChildProcessError:
                pass
            shutil.rmtree(folder, ignore_errors=True)
            os._exit(0)
        time.sleep(0.1)


def guarded_test_server(folder: str | None) -> str:
    """The test server's path to give Temporal: a launcher of the guard, or the server itself
    where no launcher can run (no folder that allows programs)."""
    from workers.runtime.binaries import temporal_test_server
    server = temporal_test_server()
    if folder is None or not sys.platform.startswith("linux") or not _can_execute_from(folder):
        return server
    guard = Path(folder) / "test_server_guard.py"
    guard.write_text(f"{inspect.getsource(_guard)}\n\nimport sys\n_guard(sys.argv[1:])\n", encoding="utf-8")
    launcher = Path(folder) / "test-server"
    command = shlex.join([sys.executable, "-I", "-S", str(guard), server, str(os.getpid()), folder])
    launcher.write_text(f'#!/bin/sh\nexec {command} "$@"\n', encoding="utf-8")
    launcher.chmod(0o700)
    return str(launcher)
