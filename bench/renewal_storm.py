"""Month-end renewal storm: N orgs all renewing at the same instant, on PostgreSQL.

    .venv/bin/python bench/renewal_storm.py 500 2000          # one storm per size, a table at the end
    .venv/bin/python bench/renewal_storm.py 2000 --floor      # also run bench/floor.py with as many
                                                              # workflows as orgs, for the ratio
    .venv/bin/python bench/renewal_storm.py 500 --no-sandbox  # as deployed (BILLING_WORKFLOW_SANDBOX=false)
    .venv/bin/python bench/renewal_storm.py 10000 --no-sandbox --floor      # ~45 min on a quiet machine
    .venv/bin/python bench/renewal_storm.py 10000 --stop-after warm-up      # setup and warm-up times only
    .venv/bin/python bench/renewal_storm.py 500 --profile out.prof   # cProfile the storm (event loop)
    .venv/bin/python bench/renewal_storm.py 500 --delivery both      # entitlement webhooks off, then on
    .venv/bin/python bench/renewal_storm.py 500 --gateway sandbox stripe   # Stripe against localstripe too

For each size: a fresh PostgreSQL database (BILLING_TEST_PG_URL's server, default the local
one), N monthly orgs created in bulk (one per card through services.orgs.create_org, the others
copies of its rows: bench/storm_setup.create_orgs, 10,000 in seconds), 10% of them with the
declining card 4000000000000341, one OrgLifecycle workflow each on the embedded dev server (in
memory), an SMTP sink in its own process, and the production worker in this process
(workers.runtime.worker.build_worker: 16 activity threads; --no-sandbox and --max-cached as
BILLING_WORKFLOW_SANDBOX and BILLING_MAX_CACHED_WORKFLOWS). The workflows are started before the
worker polls; then every org's renewal is set to the same instant, far enough ahead for the
worker to load every org and go to sleep first (--lead). Each storm prints how long each phase
took (setup, worker start -> due, due -> every org renewed and reloaded, ledger and histories,
floor), to plan a long run.

Measured from the due instant, wall clock: when each org's charge activity finished (charged),
and when its renewal finished (receipt or payment-failed e-mail sent); the workflow-time lag
(payments.created_at - due: when the workflow task that fired the timer started); renewals/s;
activities per renewal (the local ones apart: they need no task queue round trip); worker RSS;
worker and dev server CPU, in all and per renewal: flat per renewal means the cost per org does
not grow with the number of orgs. What costs money whatever the machine: Temporal Cloud's
billable actions per renewal, counted from the histories of a sample of renewed runs
(bench/actions.py; each run is one cycle: started, loaded, renewed, continued as new), beside
the floor's per workflow; and the steps that ran twice (the same org's charge, open-renewal,
settle, e-mail... executed more than once: a workflow task that timed out re-runs its local
activities), from every execution the worker made. With --delivery on (or both: off, then on,
one table), the entitlement webhooks are delivered during the storm to the reference receiver in
a process of its own (bench/platform_receiver.py): the messages it got after the due instant,
and change -> delivered for the versions the storm made (a declined renewal's past_due)."""

import argparse
import asyncio
import os
import resource
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from sqlalchemy import select, text  # noqa: E402
from temporalio.testing import WorkflowEnvironment  # noqa: E402

from actions import billable_actions, total as total_actions  # noqa: E402
from activities.mail import SmtpConfig  # noqa: E402
from activities.documents import PdfRenderer  # noqa: E402
from storm_gateway import storm_gateway  # noqa: E402
from db.migrate import upgrade  # noqa: E402
from db.models import Payment  # noqa: E402
from db.orgs import sync_plans
from db.session import Database  # noqa: E402
from domain.catalog import load_catalog  # noqa: E402
from domain.policy import Policy  # noqa: E402
from workers.runtime.binaries import temporal_cli  # noqa: E402
from workers.runtime.worker import Components, build_worker, delivering  # noqa: E402
from domain.delivery import Webhooks  # noqa: E402
from platform_receiver import delivery_figures, start_receiver  # noqa: E402
from workflows import search_attributes as sa  # noqa: E402
from tests.support.databases import create_pg_database, drop_pg_database  # noqa: E402
from storm_measures import (Ledger, SentMail, Trace, Tracing, check_ledger, count_reruns,  # noqa: E402
                            dev_server_pid, percentile, proc_cpu_seconds, renewal_actions, rss_mb,
                            tree_cpu_seconds)
from storm_setup import (create_orgs, set_renewal, start_documents_worker, start_smtp_sink,  # noqa: E402
                         start_workflows)


def print_charged(n: int, due_wall: float, trace: Trace, cpu_before, server_pid: int | None, server_before: float,
                  sent: "SentMail") -> None:
    """The charge side as soon as every org is charged (the receipts follow on the documents'
    queue, at the SMTP provider's pace: a long storm may be stopped here and still say this)."""
    charged: dict[str, float] = {}
    for t, kind, org, _ in trace.done:
        if kind == "charge_invoice" and t >= due_wall:
            charged.setdefault(org, t - due_wall)
    cpu = resource.getrusage(resource.RUSAGE_SELF)
    worker = (cpu.ru_utime + cpu.ru_stime) - (cpu_before.ru_utime + cpu_before.ru_stime)
    server = (proc_cpu_seconds(server_pid) - server_before) if server_pid else 0.0
    reruns = count_reruns([entry for entry in trace.done if entry[0] >= due_wall])
    print(f"  all {n} charged: {n / max(charged.values()):.1f} renewals/s, due -> charged p50 / p99 "
          f"{percentile(list(charged.values()), 50):.1f} / {percentile(list(charged.values()), 99):.1f} s; "
          f"CPU so far worker {1000 * worker / n:.0f} / dev server {1000 * server / n:.0f} ms per renewal; steps run "
          f"twice {sum(reruns.values())}; final e-mails sent so far {sent.sent} (load average "
          f"{os.getloadavg()[0]:.1f})", flush=True)


# ---- one storm ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class WorkerOptions:
    """What build_worker is given: the production settings BILLING_WORKFLOW_SANDBOX and
    BILLING_MAX_CACHED_WORKFLOWS, and the activity threads."""
    max_threads: int = 16
    workflow_sandbox: bool = True
    max_cached_workflows: int = 1000
    pdf_processes: int = 1
    # E-mails and their PDFs on the documents' queue: served by `python -m workers.runtime.documents`
    # in a process of its own (as it may run on another machine), or by the worker's own process.
    documents_process: bool = True

    def describe(self) -> str:
        documents = "documents worker in a process of its own" if self.documents_process else "documents in the worker"
        return (f"sandbox {'on' if self.workflow_sandbox else 'off'}, cache {self.max_cached_workflows}, "
                f"{self.max_threads} activity threads, {documents}, PDFs in {self.pdf_processes or 'no'} process(es)"
                " beside it")


@dataclass
class StormResult:
    orgs: int
    declined: int
    setup_s: float
    warmup_s: float
    warm_before_due: bool
    charged_p50: float
    charged_p99: float
    done_p50: float
    done_p99: float
    done_max: float
    lag_p50: float
    lag_p99: float
    renewals_per_s: float
    activities: int
    activities_per_renewal: float
    local_per_renewal: float
    activities_per_s: float
    by_type: dict[str, int]
    rss_mb: float
    rss_peak_mb: float
    worker_cpu_s: float   # the org worker's process (and its PDF processes when documents run in it)
    renderers_cpu_s: float
    server_cpu_s: float
    documents_cpu_s: float   # the documents worker's process and its PDF processes
    receipts: int
    receipts_per_s: float
    options: WorkerOptions
    ledger: "Ledger | None" = None
    floor_workflows_per_s: float | None = None
    reruns: dict[str, int] = field(default_factory=dict)   # by activity type: executions beyond the first
    actions: "Counter | None" = None         # billable actions of the sampled renewed runs, by kind
    actions_sampled: int = 0
    floor_actions_per_workflow: float | None = None
    delivery: bool = False
    delivered: int = 0                       # webhooks the receiver got after the due instant
    versions: int = 0                        # entitlement versions the storm made
    delivered_p99: float | None = None       # change -> delivered, s

    @property
    def actions_per_renewal(self) -> float:
        return total_actions(self.actions) / self.actions_sampled if self.actions_sampled else float("nan")
    gateway: str = "sandbox"
    gateway_calls: int | None = None       # requests sent to Stripe in the storm
    intents_succeeded: int | None = None   # succeeded PaymentIntents listed on the server

    @property
    def regular_activities_per_s(self) -> float:
        return self.activities_per_s * (1 - self.local_per_renewal / self.activities_per_renewal)


def default_lead(n: int, previous: "StormResult | None") -> float:
    """Seconds from the worker's start to the due instant: time to load every org first. 1.5
    times what the previous size took per org (the same machine, a little slower per org with
    more orgs), or 10 + n/20 s for the first size (10,000 orgs loaded in 342 s here at load 5,
    384 s on a quiet machine before: 510 s)."""
    if previous is None:
        return 10 + n / 20
    return 10 + 1.5 * n * previous.warmup_s / previous.orgs


async def storm(n: int, decline_share: float, lead: float, options: WorkerOptions, keep: bool,
                profile: str | None, history_sample: int = 200, delivery: bool = False,
                gateway_name: str = "sandbox", stop_after: str | None = None) -> StormResult | None:
    """One storm; None when stopped after `stop_after` (setup, warm-up)."""
    catalog, policy = load_catalog(), Policy()
    name, url = create_pg_database("billing_bench")
    smtp, smtp_port = start_smtp_sink()
    receiver, webhooks, received = start_receiver() if delivery else (None, Webhooks(), None)
    trace = Trace()
    env = await WorkflowEnvironment.start_local(dev_server_existing_path=temporal_cli(), search_attributes=sa.ALL,
                                                interceptors=[Tracing(trace)])
    server_pid = dev_server_pid(env.client.service_client.config.target_host)
    db = Database(url)
    payments = storm_gateway(gateway_name, db)
    documents = None
    try:
        t0 = time.perf_counter()
        upgrade(url)
        with db.transaction() as session:
            sync_plans(session, catalog)
        prefix = f"s{uuid.uuid4().hex[:4]}"
        org_ids = create_orgs(db, catalog, policy, n, decline_share, prefix, payments.card_for)
        queue = f"storm-{prefix}"
        await start_workflows(env.client, org_ids, queue)
        setup = time.perf_counter() - t0
        print(f"  setup: {n} orgs created and their workflows started in {setup:.1f}s", flush=True)
        if stop_after == "setup":
            return None
        # Every org renews at the same instant, once the worker has had time to load them all.
        due = datetime.now(timezone.utc) + timedelta(seconds=lead)
        due = due.replace(microsecond=0) + timedelta(seconds=1)
        set_renewal(db, org_ids, due)
        due_wall = due.timestamp()

        components = Components(db=db, catalog=catalog, policy=policy, smtp=SmtpConfig(port=smtp_port),
                                gateway=payments.gateway,
                                pdf=PdfRenderer(0 if options.documents_process else options.pdf_processes),
                                webhooks=webhooks)
        documents = (start_documents_worker(url, env.client.service_client.config.target_host, queue, smtp_port,
                                            options.pdf_processes) if options.documents_process else None)
        sent = SentMail(db, prefix)
        calls_before = payments.calls()
        cpu_before = resource.getrusage(resource.RUSAGE_SELF)
        server_before = proc_cpu_seconds(server_pid) if server_pid else 0.0
        profiler = None
        async with build_worker(env.client, queue, components, max_threads=options.max_threads,
                                graceful_shutdown=timedelta(seconds=10), workflow_sandbox=options.workflow_sandbox,
                                max_cached_workflows=options.max_cached_workflows,
                                serve_documents=not options.documents_process), \
                delivering(env.client, queue, components, timedelta(seconds=10)):
            worker_start = time.time()
            await trace.wait_for(n, lambda t, kind, org, template: kind == "load_org")
            warmup = time.time() - worker_start
            warm_before_due = time.time() < due_wall
            print(f"  warm-up: {n} orgs loaded in {warmup:.1f}s; "
                  f"{'sleeping until' if warm_before_due else 'LATE for'} the due instant", flush=True)
            if stop_after == "warm-up":
                return None
            await asyncio.sleep(max(0.0, due_wall - time.time()))
            sending = asyncio.create_task(sent.wait_for(n))   # watched from the due instant
            documents_before = tree_cpu_seconds(documents.pid) if documents else 0.0
            if profile:
                import cProfile
                profiler = cProfile.Profile()
                profiler.enable()
            await trace.wait_for(n, lambda t, kind, org, template: kind == "charge_invoice" and t >= due_wall)
            print_charged(n, due_wall, trace, cpu_before, server_pid, server_before, sent)
            await sending
            # Every org continues as new after its renewal (paid or not): wait for the new runs to load.
            await trace.wait_for(n, lambda t, kind, org, template: kind == "load_org" and t >= due_wall)
            if profiler:
                profiler.disable()
                profiler.dump_stats(profile)
            rss_now, rss_peak = rss_mb()
            renewed = time.time()
        cpu_after = resource.getrusage(resource.RUSAGE_SELF)
        server_after = proc_cpu_seconds(server_pid) if server_pid else 0.0
        documents_cpu = 0.0
        if documents:
            documents_cpu = tree_cpu_seconds(documents.pid) - documents_before
            documents.terminate()
            documents.wait(30)
        # The PDF processes work for the worker: their CPU is the worker's (started in the storm).
        renderers_cpu = sum(proc_cpu_seconds(pid) for pid in components.pdf.pids())
        components.pdf.shutdown()

        storm_events = [(t, kind, org, template) for t, kind, org, template in trace.done if t >= due_wall]
        charged: dict[str, float] = {}
        finished: dict[str, float] = {}
        for t, kind, org, template in storm_events:
            if kind == "charge_invoice":
                charged.setdefault(org, t - due_wall)
        finished = {org: t - due_wall for org, (t, _) in sent.seen.items()}
        receipts = [t - due_wall for t, template in sent.seen.values() if template == "receipt"]
        with db.transaction() as session:
            lags = [(at - due).total_seconds() for at in session.scalars(select(Payment.created_at))]
            declined = session.scalar(select(text("count(*)")).select_from(Payment).where(
                Payment.outcome == "declined"))
        ledger = check_ledger(db, org_ids)
        print(f"  ledger: {ledger.describe()}", flush=True)
        reruns = count_reruns(storm_events)
        print(f"  steps run twice: {sum(reruns.values())} {reruns or ''}", flush=True)
        actions, sampled = await renewal_actions(env.client, org_ids, history_sample)
        print(f"  phases: setup {setup:.0f} s, worker start -> due {due_wall - worker_start:.0f} s (warm-up "
              f"{warmup:.0f} s), due -> every org renewed and reloaded {renewed - due_wall:.0f} s, ledger and "
              f"{sampled} histories {time.time() - renewed:.0f} s", flush=True)
        figures = (0, 0, None)
        if receiver is not None:
            await asyncio.sleep(5)   # the last versions' deliveries
            receiver.terminate()
            receiver.wait(30)
            figures = delivery_figures(db, received, due)
            print(f"  delivery: {figures[0]} webhooks after the due instant; {figures[1]} versions made, "
                  f"change -> delivered p99 {figures[2]} s", flush=True)
        by_type = Counter(kind for _, kind, _, _ in storm_events)
        activities = sum(by_type.values())
        last = max(t for t, _, _, _ in storm_events) - due_wall
        return StormResult(
            orgs=n, declined=declined, setup_s=setup, warmup_s=warmup, warm_before_due=warm_before_due,
            charged_p50=percentile(list(charged.values()), 50), charged_p99=percentile(list(charged.values()), 99),
            done_p50=percentile(list(finished.values()), 50), done_p99=percentile(list(finished.values()), 99),
            done_max=max(finished.values()), lag_p50=percentile(lags, 50), lag_p99=percentile(lags, 99),
            renewals_per_s=n / max(charged.values()), activities=activities,
            receipts=len(receipts), receipts_per_s=len(receipts) / max(receipts) if receipts else 0.0,
            documents_cpu_s=documents_cpu,
            activities_per_renewal=activities / n, activities_per_s=activities / last, by_type=dict(by_type),
            local_per_renewal=sum(v for k, v in by_type.items() if k in trace.local_types) / n, options=options,
            rss_mb=rss_now, rss_peak_mb=rss_peak, ledger=ledger,
            worker_cpu_s=(cpu_after.ru_utime + cpu_after.ru_stime) - (cpu_before.ru_utime + cpu_before.ru_stime)
            + renderers_cpu, renderers_cpu_s=renderers_cpu + documents_cpu,
            server_cpu_s=server_after - server_before, reruns=reruns, actions=actions, actions_sampled=sampled,
            delivery=delivery, delivered=figures[0], versions=figures[1], delivered_p99=figures[2],
            gateway=gateway_name, gateway_calls=None if calls_before is None else payments.calls() - calls_before,
            intents_succeeded=payments.succeeded_intents(prefix))
    finally:
        if documents is not None and documents.poll() is None:
            documents.terminate()
            documents.wait(30)
        payments.close()
        await env.shutdown()
        db.dispose()
        smtp.terminate()
        smtp.wait(10)
        if receiver is not None and receiver.poll() is None:
            receiver.terminate()
            receiver.wait(30)
        if not keep:
            drop_pg_database(name)
        else:
            print(f"  kept database {url}")


async def floor_rate(workflows: int, options: WorkerOptions) -> tuple[float, float]:
    """bench/floor.py at the storm's size: that many workflows of one no-op activity each, on a
    fresh dev server, drained by a worker configured as the storm's. Workflows per second, and
    the billable actions of one of its workflows (counted as the renewals' are)."""
    import floor
    env = await WorkflowEnvironment.start_local(dev_server_existing_path=temporal_cli())
    try:
        result = await floor.run_floor(env.client, workflows, sync=True, max_threads=options.max_threads,
                                       sandbox=options.workflow_sandbox)
        history = await env.client.get_workflow_handle(result.workflow_id(0)).fetch_history()
        return result.workflows_per_second, total_actions(billable_actions(history))
    finally:
        await env.shutdown()


def print_table(results: list[StormResult]) -> None:
    def ratio(r: StormResult) -> str:
        return f"{r.renewals_per_s / r.floor_workflows_per_s:.0%}" if r.floor_workflows_per_s else "-"
    rows = [
        ("orgs (declined)", lambda r: f"{r.orgs} ({r.declined})"),
        ("entitlement webhooks", lambda r: "on" if r.delivery else "off"),
        ("webhooks in the storm (versions made)", lambda r: f"{r.delivered} ({r.versions})" if r.delivery else "-"),
        ("version -> delivered p99, s", lambda r: f"{r.delivered_p99:.1f}" if r.delivered_p99 is not None
         else "-"),
        ("renewals/s (due -> last charged)", lambda r: f"{r.renewals_per_s:.1f}"),
        ("floor workflows/s (same count)", lambda r: f"{r.floor_workflows_per_s:.1f}" if r.floor_workflows_per_s
         else "-"),
        ("ratio renewals/s : floor workflows/s", ratio),
        ("CPU per renewal: worker / dev server, ms (documents apart)", lambda r:
         f"{1000 * (r.worker_cpu_s - r.renderers_cpu_s + r.documents_cpu_s) / r.orgs:.0f} / "
         f"{1000 * r.server_cpu_s / r.orgs:.0f}"),
        ("receipts/s; documents CPU per receipt, ms", lambda r: f"{r.receipts_per_s:.1f}; "
         f"{1000 * r.renderers_cpu_s / max(1, r.receipts):.0f}"),
        ("due -> charged p50 / p99, s", lambda r: f"{r.charged_p50:.1f} / {r.charged_p99:.1f}"),
        ("steps run twice (reruns)", lambda r: f"{sum(r.reruns.values())}"),
        ("billable actions per renewal (floor per wf)", lambda r: f"{r.actions_per_renewal:.1f} ("
         + (f"{r.floor_actions_per_workflow:.0f}" if r.floor_actions_per_workflow else "-") + ")"),
        ("worker RSS now / peak, MB", lambda r: f"{r.rss_mb:.0f} / {r.rss_peak_mb:.0f}"),
        ("exactly once (ledger)", lambda r: "yes" if r.ledger and r.ledger.exactly_once else "NO"),
        ("gateway: calls per renewal; succeeded intents", lambda r: r.gateway if r.gateway_calls is None else
         f"stripe: {r.gateway_calls / r.orgs:.2f}; {r.intents_succeeded}"),
        ("", lambda r: ""),
        ("setup: create + start, s", lambda r: f"{r.setup_s:.0f}"),
        ("warm-up: load all orgs, s", lambda r: f"{r.warmup_s:.1f}" + ("" if r.warm_before_due else " LATE")),
        ("due -> renewal done p50 / p99, s", lambda r: f"{r.done_p50:.1f} / {r.done_p99:.1f}"),
        ("due -> last renewal done, s", lambda r: f"{r.done_max:.1f}"),
        ("timer lag (payments.created_at) p50 / p99, s", lambda r: f"{r.lag_p50:.1f} / {r.lag_p99:.1f}"),
        ("activities per renewal (of them local)", lambda r: f"{r.activities_per_renewal:.2f} ({r.local_per_renewal:.2f})"),
        ("activities/s in the storm: all / regular", lambda r: f"{r.activities_per_s:.1f} / {r.regular_activities_per_s:.1f}"),
        ("CPU in the storm: worker / documents (worker + PDFs) / dev server, s", lambda r:
         f"{r.worker_cpu_s - r.renderers_cpu_s + r.documents_cpu_s:.0f} / {r.renderers_cpu_s:.0f} / "
         f"{r.server_cpu_s:.0f}"),
        ("worker", lambda r: r.options.describe().replace(" activity threads", " thr")),
    ]
    width = max(len(label) for label, _ in rows)
    print()
    for label, cell in rows:
        print(f"{label:<{width}}  " + "  ".join(f"{cell(r):>14}" for r in results))
    for r in results:
        print(f"activities by type ({r.orgs} orgs): " + ", ".join(f"{k} {v}" for k, v in sorted(r.by_type.items())))
        if r.ledger:
            print(f"ledger ({r.orgs} orgs): {r.ledger.describe()}")
        if r.reruns:
            print(f"steps run twice ({r.orgs} orgs): " + ", ".join(f"{k} {v}" for k, v in sorted(r.reruns.items())))
        if r.actions_sampled:
            print(f"billable actions per renewal ({r.actions_sampled} renewed runs of {r.orgs}): " + ", ".join(
                f"{k} {v / r.actions_sampled:.2f}" for k, v in sorted(r.actions.items())))


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("orgs", type=int, nargs="*", default=[500, 2000])
    parser.add_argument("--decline-share", type=float, default=0.10)
    parser.add_argument("--lead", type=float, help="seconds from the worker start to the due instant (default: "
                        "1.5 x the previous size's warm-up per org, 10 + orgs/20 for the first: time to load every org first)")
    parser.add_argument("--max-threads", type=int, default=16, help="worker activity threads (build_worker's default)")
    parser.add_argument("--max-cached", type=int, default=1000,
                        help="BILLING_MAX_CACHED_WORKFLOWS: the worker's workflow cache (default 1000, the SDK's)")
    parser.add_argument("--no-sandbox", action="store_true", help="BILLING_WORKFLOW_SANDBOX=false")
    parser.add_argument("--pdf-processes", type=int, default=1,
                        help="BILLING_PDF_PROCESSES: processes rendering PDFs beside the worker (default 1; 0: in it)")
    parser.add_argument("--documents-in-worker", action="store_true",
                        help="serve the documents' queue in the worker's process (BILLING_SERVE_DOCUMENTS=true) "
                        "instead of `python -m workers.runtime.documents` beside it")
    parser.add_argument("--floor", action="store_true", help="also measure bench/floor.py with as many workflows as orgs (workflows/s, for the ratio)")
    parser.add_argument("--keep", action="store_true", help="keep the PostgreSQL database")
    parser.add_argument("--history-sample", type=int, default=200,
                        help="renewed runs whose histories are read for the billable actions (default 200)")
    parser.add_argument("--no-precompile", action="store_true",
                        help="leave the project without .pyc files (a checkout with PYTHONDONTWRITEBYTECODE=1)")
    parser.add_argument("--stop-after", choices=("setup", "warm-up"),
                        help="end each storm there (its time printed): setup (orgs created, workflows started), or "
                        "warm-up (every org loaded by the worker)")
    parser.add_argument("--profile", help="cProfile the storm into this file (one size only)")
    parser.add_argument("--delivery", choices=["off", "on", "both"], default="off",
                        help="entitlement webhooks to a local receiver during the storm (both: off, then on)")
    parser.add_argument("--gateway", nargs="+", choices=("sandbox", "stripe"), default=["sandbox"],
                        help="each storm on each gateway (stripe: against localstripe, bench/storm_gateway.py)")
    args = parser.parse_args()
    if not args.no_precompile:
        import floor
        floor.precompile()
    options = WorkerOptions(max_threads=args.max_threads, workflow_sandbox=not args.no_sandbox,
                            max_cached_workflows=args.max_cached, pdf_processes=args.pdf_processes,
                            documents_process=not args.documents_in_worker)
    results = []
    previous = None
    for gateway, n in [(gateway, n) for gateway in args.gateway for n in args.orgs]:
        print(f"storm of {n} orgs on the {gateway} gateway, worker: {options.describe()} (load average {os.getloadavg()[0]:.1f})",
              flush=True)
        for delivery in {"off": [False], "on": [True], "both": [False, True]}[args.delivery]:
            lead = args.lead if args.lead is not None else default_lead(n, previous)
            result = await storm(n, args.decline_share, lead, options, args.keep, args.profile,
                                 args.history_sample, delivery, gateway, args.stop_after)
            if result is None:
                continue
            previous = result
            if args.floor:
                began = time.perf_counter()
                result.floor_workflows_per_s, result.floor_actions_per_workflow = await floor_rate(n, options)
                print(f"  floor: {n} workflows in {time.perf_counter() - began:.0f} s (start, drain, one history)",
                      flush=True)
            results.append(result)
            print_table([result])
    if len(results) > 1:
        print_table(results)


if __name__ == "__main__":
    asyncio.run(main())
