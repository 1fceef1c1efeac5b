"""How long `billing simulate` takes for one org through 12 monthly renewals with dunning.

The measured scenario is the heavy reading of "with dunning": EVERY renewal is declined (the
card on file declines), the org goes past due, the first retry a day later is declined too, and
two days after the renewal the admin stores a working card: the open invoice is retried at once
and paid. Later in the month the card is swapped back to a declining one, so the next renewal
goes through dunning again. Twelve renewals, twelve dunning episodes, each through the real
workflow, activities, SQLite database and SMTP capture on the time-skipping test server.
For comparison it also times a year with a single dunning episode (month 6).

    .venv/bin/python bench/simulate_speed.py [--runs N]      (or: make bench)

Prints the wall-clock time of the simulation itself (parse + run; the interpreter start and
imports excluded, shown separately) with this process's CPU time for it (the worker and the
harness; the test server's own is not counted), and of one whole `billing simulate --json`
command. Goal (issue 27): an org-year under 1 s. Wall-clock time shows other load on the machine
(a test run, another benchmark); the CPU time much less so.

The workflows run as deployed, outside the SDK's sandbox (BILLING_WORKFLOW_SANDBOX=false),
unless BILLING_WORKFLOW_SANDBOX is set: `BILLING_WORKFLOW_SANDBOX=true` measures the default of a
development machine."""

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DECLINING, WORKING = "4000000000000341", "4242424242424242"


def scenario_text(renewals: int = 12, every_month: bool = True) -> str:
    actions = []
    if every_month:
        for month in range(1, renewals + 1):
            # Renewal at P{month}M declines; the card is fixed two days later, broken again on day 20.
            actions.append(f'  - {{at: P{month}M2D, do: update_card, card: "{WORKING}"}}')
            if month < renewals:
                actions.append(f'  - {{at: P{month}M20D, do: update_card, card: "{DECLINING}"}}')
    else:
        actions.append(f'  - {{at: P1D, do: update_card, card: "{WORKING}"}}')
        actions.append(f'  - {{at: P5M20D, do: update_card, card: "{DECLINING}"}}')
        actions.append(f'  - {{at: P6M2D, do: update_card, card: "{WORKING}"}}')
    return "\n".join([
        'description: "bench: monthly renewals, '
        + ('each declined and recovered by a card update"' if every_month else 'one declined and recovered"'),
        'start: "2026-01-31T09:00:00+00:00"',
        f'until: "P{renewals}M5D"',
        "org:",
        "  id: bench",
        "  admin_email: admin@bench.test",
        "  plan: standard",
        "  cycle: monthly",
        f'  card: "{DECLINING}"',
        "  users:",
        "    - {email: admin@bench.test, storage_gb: 1}",
        "    - {email: b@bench.test, storage_gb: 12}",
        "    - {email: c@bench.test, storage_gb: 3}",
        "actions:",
        *actions,
        "",
    ])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="timed runs (the best and all are printed)")
    args = parser.parse_args()
    os.environ.setdefault("BILLING_WORKFLOW_SANDBOX", "false")  # as deployed (deploy/), the command's run too

    started = time.perf_counter()
    from workers.simulate.run import configured, run_scenario, workflow_sandbox_configured
    from workers.simulate.scenario import load_scenario
    imported = time.perf_counter() - started

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "bench.yaml"
        path.write_text(scenario_text(), encoding="utf-8")
        catalog, policy = configured()
        timings, cpu, doc = [], [], None
        for _ in range(args.runs):
            begin, begin_cpu = time.perf_counter(), time.process_time()
            doc = asyncio.run(run_scenario(load_scenario(path, catalog, policy), catalog))
            timings.append(time.perf_counter() - begin)
            cpu.append(time.process_time() - begin_cpu)
        light = Path(folder) / "bench-one-episode.yaml"
        light.write_text(scenario_text(every_month=False), encoding="utf-8")
        light_timings, light_cpu = [], []
        for _ in range(args.runs):
            begin, begin_cpu = time.perf_counter(), time.process_time()
            light_doc = asyncio.run(run_scenario(load_scenario(light, catalog, policy), catalog))
            light_timings.append(time.perf_counter() - begin)
            light_cpu.append(time.process_time() - begin_cpu)

        import subprocess
        env = {k: v for k, v in os.environ.items() if k != "BILLING_DATABASE_URL"}  # a fresh SQLite file
        begin = time.perf_counter()
        command = subprocess.run([sys.executable, "-m", "workers.cli", "simulate", str(path), "--json"], cwd=ROOT,
                                 env=env, capture_output=True, text=True)
        command_time = time.perf_counter() - begin

    events = doc["events"]
    renewals = sum(1 for e in events if e["type"] == "invoice" and e.get("kind") == "renewal")
    declined = sum(1 for e in events if e["type"] == "charge" and e["outcome"] == "declined")
    paid = sum(1 for e in events if e["type"] == "charge" and e["outcome"] == "succeeded")
    past_due = sum(1 for e in events if e["type"] == "status" and e["status"] == "past_due")
    print(f"scenario: 1 org, {renewals} monthly renewals, {past_due} dunning episodes, "
          f"{declined} declined + {paid} paid charges, {len(events)} timeline events")
    print(f"workflows {'inside' if workflow_sandbox_configured() else 'outside'} the SDK's sandbox "
          f"(BILLING_WORKFLOW_SANDBOX={os.environ['BILLING_WORKFLOW_SANDBOX']})")
    print(f"simulation (parse + run): best {min(timings):.2f} s, CPU {min(cpu):.2f} s; runs: "
          + ", ".join(f"{t:.2f} s (CPU {c:.2f} s)" for t, c in zip(timings, cpu)))
    light_renewals = sum(1 for e in light_doc["events"] if e["type"] == "invoice" and e.get("kind") == "renewal")
    print(f"for comparison, {light_renewals} renewals with one dunning episode: best {min(light_timings):.2f} s, "
          f"CPU {min(light_cpu):.2f} s")
    print(f"imports: {imported:.2f} s; whole `billing simulate --json` command: {command_time:.2f} s "
          f"(exit {command.returncode})")
    if command.returncode != 0:
        print(command.stderr, file=sys.stderr)
    ok = renewals == 12 and json.loads(command.stdout or "{}").get("events") == events
    if not ok:
        print("warning: unexpected timeline (see above)", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
