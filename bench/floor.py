"""The floor: how fast bare Temporal runs on this machine, with nothing of ours in the way.

    .venv/bin/python bench/floor.py                       # 2000 workflows, in-memory dev server
    .venv/bin/python bench/floor.py 10000 --file-backed   # state in a SQLite file, as `make run`
    .venv/bin/python bench/floor.py 2000 --sync           # the activity in a thread pool, as ours

N workflows each run one no-op activity on the embedded dev server (`temporal server
start-dev`), and a worker configured like ours (16 activity slots; sandboxed workflows unless
--no-sandbox). All N
are started first with no worker polling, then the worker starts: the figures are the rate at
which it drains that backlog, the situation of a renewal storm. Prints workflows/s and
activities/s; bench/renewal_storm.py compares its own activity rate with this one."""

import argparse
import asyncio
import os
import resource
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from temporalio import activity, workflow  # noqa: E402

from temporalio.client import Client  # noqa: E402
from temporalio.testing import WorkflowEnvironment  # noqa: E402
from temporalio.worker import UnsandboxedWorkflowRunner, Worker  # noqa: E402
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner  # noqa: E402

if not workflow.unsafe.in_sandbox():  # the sandbox re-imports this module for every workflow run
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

with workflow.unsafe.imports_passed_through():
    from workers.runtime.binaries import temporal_cli  # noqa: E402

PACKAGES = ("domain", "db", "services", "workflows", "activities", "workers", "bench")


def precompile() -> None:
    """Byte-compile the project, as `pip install .` does in the deploy image. A checkout run with
    PYTHONDONTWRITEBYTECODE=1 (this machine, CI) has no .pyc files: the workflow sandbox then
    compiles the workflow's module from source for every new run, which costs the worker more
    than anything else in a storm (docs/reliability.md)."""
    import compileall
    root = Path(__file__).resolve().parents[1]
    for package in PACKAGES:
        compileall.compile_dir(str(root / package), quiet=1)


@workflow.defn(name="Floor")
class FloorWorkflow:
    @workflow.run
    async def run(self, value: int) -> int:
        return await workflow.execute_activity("noop", value, start_to_close_timeout=timedelta(seconds=60))


@dataclass
class FloorResult:
    workflows: int
    start_seconds: float
    drain_seconds: float
    first_activity_seconds: float
    last_activity_seconds: float
    task_queue: str = ""

    def workflow_id(self, i: int) -> str:
        return f"floor-{self.task_queue}-{i}"

    @property
    def workflows_per_second(self) -> float:
        return self.workflows / self.drain_seconds

    @property
    def activities_per_second(self) -> float:
        return self.workflows / self.last_activity_seconds


async def start_all(client: Client, n: int, task_queue: str, concurrency: int = 64) -> None:
    semaphore = asyncio.Semaphore(concurrency)

    async def one(i: int) -> None:
        async with semaphore:
            await client.start_workflow(FloorWorkflow.run, i, id=f"floor-{task_queue}-{i}", task_queue=task_queue)
    await asyncio.gather(*(one(i) for i in range(n)))


async def wait_completed(client: Client, task_queue: str, n: int, activities_done: list[float]) -> None:
    """Watch the in-process activity count first (free), then ask visibility, rarely: a count
    query over thousands of closed workflows every 0.2 s would itself load the dev server."""
    while len(activities_done) < n:
        await asyncio.sleep(0.05)
    while True:
        done = (await client.count_workflows(f"TaskQueue = '{task_queue}' AND ExecutionStatus = 'Completed'")).count
        if done >= n:
            return
        await asyncio.sleep(0.5)


async def run_floor(client: Client, n: int, sync: bool = False, max_threads: int = 16,
                    sandbox: bool = True) -> FloorResult:
    task_queue = f"floor-{os.getpid()}-{time.monotonic_ns()}"
    started = time.perf_counter()
    await start_all(client, n, task_queue)
    start_seconds = time.perf_counter() - started

    times: list[float] = []
    if sync:
        def noop(value: int) -> int:
            times.append(time.perf_counter())
            return value
        activities = [activity.defn(name="noop")(noop)]
    else:
        async def anoop(value: int) -> int:
            times.append(time.perf_counter())
            return value
        activities = [activity.defn(name="noop")(anoop)]
    worker = Worker(client, task_queue=task_queue, workflows=[FloorWorkflow], activities=activities,
                    activity_executor=ThreadPoolExecutor(max_threads) if sync else None,
                    max_concurrent_activities=max_threads,
                    workflow_runner=SandboxedWorkflowRunner() if sandbox else UnsandboxedWorkflowRunner())
    async with worker:
        begin = time.perf_counter()
        await wait_completed(client, task_queue, n, times)
        drain = time.perf_counter() - begin
    return FloorResult(n, start_seconds, drain, times[0] - begin, max(times) - begin, task_queue)


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("workflows", type=int, nargs="*", default=[2000])
    parser.add_argument("--file-backed", action="store_true", help="dev server state in a SQLite file")
    parser.add_argument("--sync", action="store_true", help="a thread-pool (sync) activity, like ours")
    parser.add_argument("--max-threads", type=int, default=16)
    parser.add_argument("--no-sandbox", action="store_true", help="workflows outside the SDK's sandbox "
                        "(BILLING_WORKFLOW_SANDBOX=false, as deployed)")
    parser.add_argument("--no-precompile", action="store_true", help="leave the project without .pyc files")
    args = parser.parse_args()
    if not args.no_precompile:
        precompile()
    with tempfile.TemporaryDirectory() as tmp:
        env = await WorkflowEnvironment.start_local(
            dev_server_existing_path=temporal_cli(),
            dev_server_database_filename=str(Path(tmp) / "temporal.db") if args.file_backed else None)
        try:
            store = "file" if args.file_backed else "memory"
            kind = "sync" if args.sync else "async"
            print(f"{'workflows':>9} {'store':>6} {'activity':>8} {'start/s':>8} {'drain s':>8} "
                  f"{'wf/s':>7} {'act/s':>7} {'rss MB':>7}")
            for n in args.workflows:
                result = await run_floor(env.client, n, args.sync, args.max_threads, sandbox=not args.no_sandbox)
                print(f"{n:>9} {store:>6} {kind:>8} {n / result.start_seconds:>8.0f} {result.drain_seconds:>8.1f} "
                      f"{result.workflows_per_second:>7.0f} {result.activities_per_second:>7.0f} {rss_mb():>7.0f}",
                      flush=True)
        finally:
            await env.shutdown()


if __name__ == "__main__":
    # Run the module under its own name: the workflow sandbox re-imports a workflow's module by
    # name, and "__main__" cannot be.
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import floor
    asyncio.run(floor.main())
