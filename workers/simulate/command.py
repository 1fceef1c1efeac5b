"""`billing simulate SCENARIO.yaml [--json]` (and `--example`): the command around a run.

It stops at a wall-clock limit (BILLING_SIMULATE_TIMEOUT seconds). SIGTERM, SIGINT and SIGHUP
stop it with the same clean-up as a normal end; a second signal stops it at once, as does the
limit when the clean-up does not finish (the test server's guard then stops the server)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import os
import signal
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workers.simulate import run
from workers.simulate.errors import SimulationFailed, SimulationRefused

if TYPE_CHECKING:  # the heavy imports wait until a scenario runs: `--example` prints at once
    from workers.simulate.scenario import Scenario

EXIT_OK, EXIT_FAILED, EXIT_INVALID, EXIT_TIMEOUT = 0, 1, 2, 3
TIMEOUT_SETTING = "BILLING_SIMULATE_TIMEOUT"
DEFAULT_TIMEOUT_SECONDS = 300.0  # real time for a whole run: some 25 years of monthly renewals
CLEANUP_SECONDS = 20.0           # after the limit or a signal, real time allowed for the clean-up
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


class WallClockLimit(Exception):
    """The run took longer than the wall-clock limit (exit 3)."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"the run took longer than its wall-clock limit of {seconds:g} s; set "
                         f"{TIMEOUT_SETTING} (seconds) to allow more")


class Interrupted(Exception):
    """A signal stopped the run (exit 128 + the signal's number, as a shell reports it)."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"interrupted by {signal.Signals(signum).name}")
        self.signum = signum


@contextlib.contextmanager
def _quiet_logging():
    """Only errors from the libraries on stderr for the run; levels are put back afterwards (the
    command may run inside a larger process, e.g. the test suite)."""
    root = logging.getLogger()
    added = None
    if not root.handlers:
        added = logging.StreamHandler(sys.stderr)
        added.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        root.addHandler(added)
    noisy = [logging.getLogger(name) for name in ("mail.log", "alembic", "temporalio", "aiosmtplib",
                                                  "billing.simulate")]
    levels = [logger.level for logger in noisy]
    for logger in noisy:
        logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for logger, level in zip(noisy, levels):
            logger.setLevel(level)
        if added is not None:
            root.removeHandler(added)


def wall_clock_limit() -> float:
    """BILLING_SIMULATE_TIMEOUT: seconds of real time a run may take (default 300)."""
    raw = os.environ.get(TIMEOUT_SETTING, "").strip()
    if not raw:
        return DEFAULT_TIMEOUT_SECONDS
    try:
        seconds = float(raw)
    except ValueError:
        seconds = math.nan
    if not math.isfinite(seconds) or seconds <= 0:
        raise SimulationRefused(f"{TIMEOUT_SETTING}: expected a number of seconds above 0, got {raw[:40]!r}")
    return seconds


def run_with_limits(scenario: Scenario, catalog, database_url: str | None, limit: float,
                    pdfs: bool = False) -> dict[str, Any]:
    """run_scenario within the wall-clock limit; SIGTERM, SIGINT and SIGHUP stop it with its
    clean-up (a second signal stops at once). Raises WallClockLimit or Interrupted.

    Signals can be caught only in the main thread (the `billing` command); elsewhere (tests
    calling the command in a thread) the limit still holds, without the backstop below."""
    in_main_thread = threading.current_thread() is threading.main_thread()
    received: list[int] = []

    def hard_stop(message: str, code: int) -> None:
        # Leave now, without the clean-up: the test server's guard stops the server and removes
        # the run's folder once this process is gone.
        sys.stderr.write(f"simulation stopped: {message}\n")
        sys.stderr.flush()
        os._exit(code)

    async def main() -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()

        def on_signal(signum: int) -> None:
            if received:
                hard_stop(f"interrupted by {signal.Signals(received[0]).name}, then by "
                          f"{signal.Signals(signum).name}: stopped without waiting for the clean-up",
                          128 + signum)
            received.append(signum)
            task.cancel()
        if in_main_thread:
            for signum in STOP_SIGNALS:
                loop.add_signal_handler(signum, on_signal, signum)
        try:
            async with asyncio.timeout(limit) as budget:
                return await run.run_scenario(scenario, catalog, database_url, pdfs=pdfs)
        except TimeoutError:
            if budget.expired():
                raise WallClockLimit(limit) from None
            raise
        except asyncio.CancelledError:
            if received:
                raise Interrupted(received[0]) from None
            raise
        finally:
            if in_main_thread:
                for signum in STOP_SIGNALS:
                    loop.remove_signal_handler(signum)

    backstop = None
    if in_main_thread:
        backstop = threading.Timer(limit + CLEANUP_SECONDS, hard_stop,
                                   (f"{WallClockLimit(limit)} (and its clean-up did not finish within "
                                    f"{CLEANUP_SECONDS:g} s)", EXIT_TIMEOUT))
        backstop.daemon = True
        backstop.start()
    try:
        return asyncio.run(main())
    finally:
        if backstop is not None:
            backstop.cancel()


def run_simulate_command(scenario: Path | None, as_json: bool, example: bool, pdfs: bool = False) -> int:
    """The body of `billing simulate` (workers.cli.operators); returns the exit code.

    Exit codes: 0 done; 1 the run failed; 2 the scenario or the configuration is refused (nothing
    ran); 3 the wall-clock limit (BILLING_SIMULATE_TIMEOUT) was reached; 128 + N stopped by
    signal N. Every failure is one line on stderr."""
    if example:
        from workers.simulate.example import EXAMPLE
        sys.stdout.write(EXAMPLE)
        return EXIT_OK
    from pydantic import ValidationError
    from domain.errors import CatalogError
    from workers.runtime.config import setting_error
    from workers.simulate.scenario import ScenarioError, load_scenario

    def error(message: str) -> None:  # plain, unwrapped: one line a script can read
        lines = [line.strip() for line in str(message).splitlines()
                 if line.strip() and not line.strip().startswith("(Background on this error")]
        sys.stderr.write("; ".join(lines) + "\n")
        sys.stderr.flush()

    if scenario is None:
        error("scenario error: give a scenario file (`billing simulate --example` prints one)")
        return EXIT_INVALID
    try:
        limit = wall_clock_limit()
    except SimulationRefused as err:
        error(f"simulation refused: {err}")
        return EXIT_INVALID
    try:
        catalog, policy = run.configured()
        file_limit = run.max_input_file_mb()
    except ValidationError as err:  # a BILLING_ setting out of range: refused before anything runs
        error(f"simulation refused: {setting_error(err)}")
        return EXIT_INVALID
    except CatalogError as err:
        error(f"simulation refused: {err.message}")
        return EXIT_INVALID
    except Exception as err:  # noqa: BLE001
        error(f"simulation failed: configuration: {err}")
        return EXIT_FAILED
    try:
        parsed = load_scenario(scenario, catalog, policy, file_limit)
    except ScenarioError as err:
        error(f"scenario error: {err}")
        return EXIT_INVALID
    try:
        with _quiet_logging():
            doc = run_with_limits(parsed, catalog, os.environ.get("BILLING_DATABASE_URL") or None, limit, pdfs)
    except SimulationRefused as err:
        error(f"simulation refused: {err}")
        return EXIT_INVALID
    except WallClockLimit as err:
        error(f"simulation stopped: {err}")
        return EXIT_TIMEOUT
    except Interrupted as err:
        error(f"simulation stopped: {err}")
        return 128 + err.signum
    except SimulationFailed as err:
        error(f"simulation failed: {err}")
        return EXIT_FAILED
    except Exception as err:  # noqa: BLE001
        error(f"simulation failed: {type(err).__name__}: {err}")
        return EXIT_FAILED
    if as_json:
        sys.stdout.write(json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
        sys.stdout.flush()
    else:
        from rich.console import Console

        from workers.simulate.table import render_table
        render_table(doc, Console(highlight=False), parsed.description)
    return EXIT_OK
