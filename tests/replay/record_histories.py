"""Record the org workflow's histories on its main paths, for the replay test.

    .venv/bin/python -m tests.replay.record_histories 1.1            # into tests/replay/histories/1.1/
    .venv/bin/python -m tests.replay.record_histories 1.1 renewals   # one scenario only
    .venv/bin/python -m tests.replay.record_histories 1.1 --out DIR

Runs the real workflow and activities on the time-skipping test server, with a throwaway SQLite
database and an SMTP sink, through every path in SCENARIOS. Every run of every org (the
continued-as-new ones too) is saved as `<scenario>--<workflow id>--run<k>.json` (the format of
`temporal workflow show --output json`) under histories/<version>/. A version's directory stands
for the workflow code deployed at the time: keep it while runs recorded by that code can still be
open, and add a new version (never overwrite one) after a deliberate, patched change: see
docs/reliability.md, "Replay"."""

import argparse
import asyncio
import sys
import tempfile
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path

if __package__ in (None, ""):  # run as a file: make the project importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from temporalio.api.enums.v1 import EventType  # noqa: E402
from temporalio.client import Client, WorkflowHistory  # noqa: E402
from temporalio.testing import WorkflowEnvironment  # noqa: E402

from db.migrate import upgrade  # noqa: E402
from db.orgs import sync_plans  # noqa: E402
from db.session import Database  # noqa: E402
from domain import requests as rq  # noqa: E402
from domain.cards import sandbox_tokenise  # noqa: E402
from domain.catalog import load_catalog  # noqa: E402
from domain.onboarding import NewOrg, NewUser, validate_new_org  # noqa: E402
from domain.periods import boundary  # noqa: E402
from domain.policy import Policy  # noqa: E402
from domain.states import Cycle  # noqa: E402
from tests.support.smtp import SmtpSink  # noqa: E402
from tests.support.stack import Stack  # noqa: E402
from workers.runtime.binaries import temporal_test_server  # noqa: E402
from workers.runtime.search_attributes import api_types  # noqa: E402
from workflows.messages import Opening, workflow_id_for  # noqa: E402
from workflows.starter import open_org  # noqa: E402

HISTORIES = Path(__file__).resolve().parent / "histories"
GOOD, DECLINING = "4242424242424242", "4000000000000341"
STAFF = "rina@billing.test"


async def trial_to_free(stack: Stack) -> list[str]:
    start = await stack.now()
    org_id = await stack.create_org("replay-trial", users=[("budi@toko.test", 7.0)], start=start)
    await stack.advance_to(start + timedelta(days=stack.policy.trial_days, hours=1))
    return [org_id]


async def renewals(stack: Stack) -> list[str]:
    start = await stack.now()
    org_id = await stack.create_org("replay-renewal", plan="standard", cycle="monthly", card=GOOD, start=start)
    await stack.advance_to(boundary(start, Cycle.MONTHLY, 2) + timedelta(hours=1))  # two renewals
    return [org_id]


async def dunning_to_free(stack: Stack) -> list[str]:
    start = await stack.now()
    org_id = await stack.create_org("replay-dunning-free", plan="standard", cycle="monthly", card=DECLINING,
                                    start=start, users=[("big@x.test", 12.0)])
    await stack.advance_to(boundary(start, Cycle.MONTHLY, 1) + timedelta(days=8))
    return [org_id]


async def dunning_recovered(stack: Stack) -> list[str]:
    start = await stack.now()
    org_id = await stack.create_org("replay-dunning-recovered", plan="standard", cycle="monthly", card=DECLINING,
                                    start=start)
    renewal = boundary(start, Cycle.MONTHLY, 1)
    await stack.advance_to(renewal + timedelta(days=2))
    good = sandbox_tokenise(GOOD)
    await stack.send(org_id, rq.UpdateCardRequest(good.token, good.brand, good.last4,
                                                                  requested_by=f"admin@{org_id}.test"))
    await stack.advance_to(renewal + timedelta(days=3))
    return [org_id]


async def scheduled_downgrade(stack: Stack) -> list[str]:
    start = await stack.now()
    org_id = await stack.create_org("replay-downgrade", plan="professional", cycle="monthly", card=GOOD, start=start,
                                    users=[("big@x.test", 45.0)])
    renewal = boundary(start, Cycle.MONTHLY, 1)
    await stack.advance_to(renewal - timedelta(days=20))
    await stack.send(org_id, rq.DowngradeRequest("standard", requested_by=STAFF,
                                                                       reason="customer asked by phone"))
    await stack.advance_to(renewal + timedelta(hours=1))
    return [org_id]


async def trial_to_paid(stack: Stack) -> list[str]:
    """A plan and a tier chosen during the trial, a card stored: the trial converts and is charged."""
    start = await stack.now()
    org_id = await stack.create_org("replay-trial-paid", users=[("big@x.test", 40.0)], start=start)
    await stack.advance_to(start + timedelta(days=5))
    good = sandbox_tokenise(GOOD)
    await stack.send(org_id, rq.UpgradeRequest("standard", "monthly"))
    await stack.send(org_id, rq.ChangeTierRequest(2000))
    await stack.send(org_id, rq.UpdateCardRequest(good.token, good.brand, good.last4))
    await stack.advance_to(start + timedelta(days=stack.policy.trial_days, hours=1))
    return [org_id]


async def purchases(stack: Stack) -> list[str]:
    """Purchases mid-cycle: one waits for payment (declining card) and is paid, re-priced, by a
    card update; an add-on bought back; a tier raise; a yearly switch."""
    start = await stack.now()
    org_id = await stack.create_org("replay-purchases", plan="standard", cycle="monthly", card=DECLINING, start=start)
    await stack.advance_to(start + timedelta(days=3))
    await stack.send(org_id, rq.AddLicencesRequest(2))
    await stack.advance_to(start + timedelta(days=4))
    good = sandbox_tokenise(GOOD)
    await stack.send(org_id, rq.UpdateCardRequest(good.token, good.brand, good.last4))
    await stack.send(org_id, rq.BuyAddonRequest("support_essentials"))
    await stack.send(org_id, rq.RemoveAddonRequest("support_essentials"))
    await stack.send(org_id, rq.BuyAddonRequest("support_essentials"))
    await stack.send(org_id, rq.ChangeTierRequest(3000))
    await stack.send(org_id, rq.AddUserRequest("big@x.test", 40.0))
    await stack.advance_to(start + timedelta(days=6))
    await stack.send(org_id, rq.SwitchToYearlyRequest())
    await stack.advance_to(start + timedelta(days=7))
    return [org_id]


async def usage(stack: Stack) -> list[str]:
    """Usage: a usage file (one Update), a report the workflow drops (no activity), a user added
    then reported (the roster learns them), over the renewal."""
    start = await stack.now()
    org_id = await stack.create_org("replay-usage", plan="standard", cycle="monthly", card=GOOD, start=start,
                                    licences=3, users=[("b@x.test", 1.0)])
    await stack.advance_to(start + timedelta(days=2))
    await stack.send(org_id, rq.ImportUsageRequest([[f"admin@{org_id}.test", 2.0], ["b@x.test", 45.0]]))
    await stack.handle(org_id).signal("usage_reported", rq.SetUsageRequest("b@x.test", float("inf")))
    await stack.send(org_id, rq.AddUserRequest("c@x.test"))
    await stack.send(org_id, rq.SetUsageRequest("c@x.test", 3.0))
    await stack.advance_to(boundary(start, Cycle.MONTHLY, 1) + timedelta(hours=1))
    return [org_id]


async def usage_reports(stack: Stack) -> list[str]:
    """Usage reports and contact counts as signals, stamped and decided in batches: a user blocked
    then unblocked, a report older than the one applied (changes nothing), a contact count by
    signal then by Update; more signals just before the renewal, applied around it."""
    start = await stack.now()
    org_id = await stack.create_org("replay-reports", plan="standard", cycle="monthly", card=GOOD, start=start,
                                    licences=3, users=[("b@x.test", 1.0), ("c@x.test", 1.0)])
    handle = stack.handle(org_id)
    await stack.advance_to(start + timedelta(days=1))
    at = (start + timedelta(hours=20)).isoformat()
    await handle.signal("usage_reported", {"user": "b@x.test", "storage_gb": 45, "report_id": "m-2", "reported_at": at})
    await handle.signal("usage_reported", {"user": "c@x.test", "storage_gb": 2})
    await handle.signal("contacts_reported", {"contacts": 2500})
    await stack.advance_to(start + timedelta(days=2))
    older = (start + timedelta(hours=10)).isoformat()
    await handle.signal("usage_reported", {"user": "b@x.test", "storage_gb": 1, "report_id": "m-1", "reported_at": older})
    await handle.signal("usage_reported", {"user": "b@x.test", "storage_gb": 3})
    await stack.send(org_id, rq.SetContactsRequest(1800))
    renewal = boundary(start, Cycle.MONTHLY, 1)
    await stack.advance_to(renewal - timedelta(minutes=1))
    for gb in (31, 5, 40):
        await handle.signal("usage_reported", {"user": "c@x.test", "storage_gb": gb})
    await stack.advance_to(renewal + timedelta(hours=1))
    return [org_id]


async def yearly_to_monthly(stack: Stack) -> list[str]:
    """A yearly org schedules the switch to monthly, withdraws it, schedules it again; renews
    monthly from its yearly renewal."""
    start = await stack.now()
    org_id = await stack.create_org("replay-yearly-monthly", plan="standard", cycle="yearly", card=GOOD, start=start)
    await stack.advance_to(start + timedelta(days=30))
    await stack.send(org_id, rq.SwitchToMonthlyRequest())
    await stack.send(org_id, rq.CancelSwitchToMonthlyRequest())
    await stack.send(org_id, rq.SwitchToMonthlyRequest())
    renewal = boundary(start, Cycle.YEARLY, 1)
    await stack.advance_to(boundary(renewal, Cycle.MONTHLY, 1) + timedelta(hours=1))  # the yearly, then a monthly
    return [org_id]


async def opening(stack: Stack) -> list[str]:
    """New customers on a paid plan (update-with-start): one pays its first cycle and renews, one's
    card is declined and nothing of it remains (its run ends)."""
    start = await stack.now()
    org_ids = []
    for org_id, card in (("replay-opening-paid", GOOD), ("replay-opening-declined", DECLINING)):
        new = validate_new_org(NewOrg(id=org_id, name="New Co", admin_email=f"admin@{org_id}.test", plan="standard",
                                      cycle="monthly", users=[NewUser(f"b@{org_id}.test", 40.0)]), stack.catalog)
        stack.started.append(org_id)
        await open_org(stack.client, Opening(new, sandbox_tokenise(card)), stack.task_queue)
        org_ids.append(org_id)
    await stack.send(org_ids[0], rq.AddLicencesRequest(1))
    await stack.advance_to(boundary(start, Cycle.MONTHLY, 1) + timedelta(hours=1))
    return org_ids


async def escalation(stack: Stack) -> list[str]:
    """Large accounts (3 licences here: the scenario's policy) declined through the dunning
    ladder are escalated to billing staff; each cycle served while escalated is invoiced on its
    renewal date and charged; staff extend the grace on one (then downgrade it), retry another."""
    start = await stack.now()
    org_ids = [await stack.create_org(f"replay-escalated-{n}", plan="standard", cycle="monthly", card=DECLINING,
                                      start=start, users=[("b@big.test", 1.0), ("c@big.test", 1.0)])
               for n in (1, 2)]
    renewals = [boundary(start, Cycle.MONTHLY, n) for n in (1, 2)]
    await stack.advance_to(renewals[0] + timedelta(days=7, hours=1))    # escalated after the last retry
    await stack.advance_to(renewals[1] + timedelta(hours=1))            # renewed while escalated
    await stack.send(org_ids[0], rq.ResolveEscalationRequest(
        "extend", extend_days=3, requested_by=STAFF, reason="customer promised"))
    await stack.send(org_ids[1], rq.ResolveEscalationRequest(
        "retry", requested_by=STAFF, reason="asked to try again"))
    await stack.advance_to(renewals[1] + timedelta(days=3, hours=2))    # the extended grace's retry, declined
    await stack.send(org_ids[0], rq.ResolveEscalationRequest(
        "downgrade", requested_by=STAFF, reason="no payment"))
    return org_ids


SCENARIOS: dict[str, Callable[[Stack], Awaitable[list[str]]]] = {
    "trial-to-free": trial_to_free, "renewals": renewals, "dunning-to-free": dunning_to_free,
    "dunning-recovered": dunning_recovered, "scheduled-downgrade": scheduled_downgrade,
    "trial-to-paid": trial_to_paid, "purchases": purchases, "usage": usage, "usage-reports": usage_reports,
    "yearly-to-monthly": yearly_to_monthly, "opening": opening, "escalation": escalation,
}
# The policy a scenario needs beside the defaults (the worker reads it when it starts).
POLICIES: dict[str, dict] = {"escalation": {"large_account_licences": 3}}


async def all_runs(client: Client, workflow_id: str) -> list[WorkflowHistory]:
    """Every run of a workflow, first to last, following the continue-as-new chain."""
    latest = await client.get_workflow_handle(workflow_id).fetch_history()
    run_id = latest.events[0].workflow_execution_started_event_attributes.first_execution_run_id or None
    histories = []
    while run_id:
        history = await client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history()
        histories.append(history)
        last = history.events[-1]
        run_id = (last.workflow_execution_continued_as_new_event_attributes.new_execution_run_id
                  if last.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW else None)
    return histories


async def record(out: Path, scenarios: list[str] | None = None) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    catalog = load_catalog()
    sink = SmtpSink().start()
    env = await WorkflowEnvironment.start_time_skipping(test_server_existing_path=temporal_test_server())
    written: list[Path] = []
    try:
        from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
        await env.client.operator_service.add_search_attributes(AddSearchAttributesRequest(
            namespace="default", search_attributes=api_types()))
        with tempfile.TemporaryDirectory() as tmp:
            url = f"sqlite:///{tmp}/billing.db"
            upgrade(url)
            db = Database(url)
            with db.transaction() as session:
                sync_plans(session, catalog)
            for name in scenarios or list(SCENARIOS):
                stack = Stack(env=env, db=db, catalog=catalog,
                              policy=Policy(billing_staff=(STAFF,), **POLICIES.get(name, {})),
                              smtp_port=sink.port, task_queue=f"replay-{name}")
                async with stack.worker():
                    org_ids = await SCENARIOS[name](stack)
                await stack.terminate_all()
                for old in out.glob(f"{name}--*.json"):
                    old.unlink()
                for org_id in org_ids:
                    workflow_id = workflow_id_for(org_id)
                    for k, history in enumerate(await all_runs(env.client, workflow_id), start=1):
                        path = out / f"{name}--{workflow_id}--run{k}.json"
                        path.write_text(history.to_json() + "\n")
                        written.append(path)
            db.dispose()
    finally:
        await env.shutdown()
        sink.stop()
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("version", help="directory under tests/replay/histories/, e.g. 1.1")
    parser.add_argument("scenarios", nargs="*", choices=[[], *SCENARIOS], help="default: all")
    parser.add_argument("--out", type=Path, help="write here instead of tests/replay/histories/VERSION")
    args = parser.parse_args()
    for path in asyncio.run(record(args.out or HISTORIES / args.version, args.scenarios or None)):
        print(f"{path}  ({len(WorkflowHistory.from_json('x', path.read_text()).events)} events)")


if __name__ == "__main__":
    main()
