"""What the storm bench measures: the worker's activities as they finish (Trace), CPU and memory
of the processes, the e-mails marked sent, the steps that ran twice, Temporal Cloud's billable
actions, and what the storm left in the ledger (exactly once). Used by bench/renewal_storm.py."""

import asyncio
import bisect
import os
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import func, select
from temporalio import activity
from temporalio import client as temporal_client
from temporalio import worker as temporal_worker

from actions import billable_actions
from db.models import EmailMessage, Invoice, OrgEvent, Payment
from db.session import Database
from domain.states import InvoiceKind

# ---- what the worker did, and when ------------------------------------------------------------

@dataclass
class Trace:
    """Wall-clock completion of every activity, by type, with the org it was for."""
    done: list[tuple[float, str, str, str]] = field(default_factory=list)  # (time, type, org, template)
    local_types: set[str] = field(default_factory=set)  # run as local activities (no task queue round trip)

    def record(self, activity_type: str, arg: object, is_local: bool) -> None:
        org_id = getattr(arg, "org_id", arg if isinstance(arg, str) else "")
        self.done.append((time.time(), activity_type, org_id, getattr(arg, "template", "")))
        if is_local:
            self.local_types.add(activity_type)

    async def wait_for(self, count: int, matches: Callable[[float, str, str, str], bool]) -> None:
        """Until `count` completions match; each one is looked at once (the bench shares the
        worker's process: rescanning 60,000 entries five times a second would slow the storm)."""
        seen = found = 0
        while found < count:
            await asyncio.sleep(0.2)
            new, seen = self.done[seen:], len(self.done)
            found += sum(1 for entry in new if matches(*entry))


class Tracing(temporal_client.Interceptor, temporal_worker.Interceptor):
    """A client interceptor is also used by the workers built on that client."""

    def __init__(self, trace: Trace) -> None:
        self.trace = trace

    def intercept_activity(self, next: temporal_worker.ActivityInboundInterceptor):  # noqa: A002
        trace = self.trace

        class Inbound(temporal_worker.ActivityInboundInterceptor):
            async def execute_activity(self, input: temporal_worker.ExecuteActivityInput):  # noqa: A002
                result = await self.next.execute_activity(input)
                info = activity.info()
                trace.record(info.activity_type, input.args[0] if input.args else None, info.is_local)
                return result
        return Inbound(next)


def proc_cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def tree_cpu_seconds(pid: int) -> float:
    """A process and its live descendants (the documents worker and its PDF processes)."""
    children: dict[int, list[int]] = {}
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                parent = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            children.setdefault(parent, []).append(int(proc.name))
    total, todo = 0.0, [pid]
    while todo:
        current = todo.pop()
        try:
            total += proc_cpu_seconds(current)
        except OSError:
            continue
        todo.extend(children.get(current, []))
    return total



class SentMail:
    """When each org's final e-mail (receipt or payment_failed) was marked sent, wall clock: the
    documents worker may be another process. Twice a second it reads two numbers (the final
    e-mails sent, and the newest org event's id with the time it was read); once all are sent,
    each e-mail's `email` event (written as it was marked sent) is given the time of the first
    read that saw its id. Reading the outbox's rows at every poll would cost the worker's process
    more the more orgs there are (10,000 rows twice a second at the end of a 10,000-org storm)."""
    FINALS = ("receipt", "payment_failed")

    def __init__(self, db: Database, prefix: str) -> None:
        self.db, self.prefix = db, prefix
        self.sent = 0
        self.marks: list[tuple[float, int]] = []   # (wall clock, newest org event id then)
        self.seen: dict[str, tuple[float, str]] = {}

    def poll(self) -> None:
        with self.db.transaction() as session:
            self.sent = session.scalar(select(func.count()).select_from(EmailMessage).where(
                EmailMessage.org_id.startswith(self.prefix), EmailMessage.template.in_(self.FINALS),
                EmailMessage.status == "sent"))
            newest = session.scalar(select(func.max(OrgEvent.id))) or 0
        self.marks.append((time.time(), newest))

    async def wait_for(self, count: int) -> None:
        while self.sent < count:
            await asyncio.sleep(0.5)
            await asyncio.to_thread(self.poll)
        self._times()

    def _times(self) -> None:
        ids = [event_id for _, event_id in self.marks]
        with self.db.transaction() as session:
            events = session.execute(select(OrgEvent.id, OrgEvent.org_id, OrgEvent.data).where(
                OrgEvent.org_id.startswith(self.prefix), OrgEvent.type == "email").order_by(OrgEvent.id)).all()
        for event_id, org_id, data in events:
            if data.get("template") in self.FINALS:
                first = bisect.bisect_left(ids, event_id)
                if first < len(self.marks):
                    self.seen.setdefault(org_id, (self.marks[first][0], data["template"]))


def dev_server_pid(target: str) -> int | None:
    """The embedded dev server's process, found by the port it serves."""
    port = target.rsplit(":", 1)[-1]
    for proc in Path("/proc").iterdir():
        try:
            args = (proc / "cmdline").read_bytes().split(b"\0")
        except (OSError, ValueError):
            continue
        if b"start-dev" in args and port.encode() in args:
            return int(proc.name)
    return None


def rss_mb() -> tuple[float, float]:
    """(current, peak) resident set of this process, in MB."""
    status = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines() if ":" in line)
    return int(status["VmRSS"].split()[0]) / 1024, int(status["VmHWM"].split()[0]) / 1024


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))] if ordered else float("nan")


# ---- what ran twice, and what Temporal Cloud would bill ----------------------------------------

def count_reruns(storm_events: list[tuple[float, str, str, str]]) -> dict[str, int]:
    """Executions beyond the first of each org's step in the storm (its charge, open-renewal,
    settle, e-mail by template, the new run's load): each ran twice because a workflow task (or
    an activity attempt) ended before its result was recorded."""
    runs = Counter((kind, org, template) for _, kind, org, template in storm_events)
    reruns: Counter = Counter()
    for (kind, _, _), count in runs.items():
        if count > 1:
            reruns[kind] += count - 1
    return dict(reruns)


async def renewal_actions(client, org_ids: list[str], sample: int) -> tuple[Counter, int]:
    """Billable actions of the runs that renewed, for `sample` orgs spread over the storm: each
    org's current run was continued from the run that renewed; that run is one whole cycle."""
    from workflows.messages import workflow_id_for
    step = max(1, len(org_ids) // sample) if sample else 0
    chosen = org_ids[::step][:sample] if step else []
    counts: Counter = Counter()
    for org_id in chosen:
        wid = workflow_id_for(org_id)
        current = await client.get_workflow_handle(wid).fetch_history()
        renewed_run = current.events[0].workflow_execution_started_event_attributes.continued_execution_run_id
        renewed = await client.get_workflow_handle(wid, run_id=renewed_run).fetch_history()
        counts.update(billable_actions(renewed))
    return counts, len(chosen)


# ---- exactly once -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Ledger:
    """What the storm left in the database, org by org: one renewal invoice, one charge on it,
    one receipt or payment_failed e-mail sent; nothing twice."""
    orgs: int
    charges: int
    declined: int
    renewal_invoices: int
    orgs_not_one_invoice: int
    invoices_charged_twice: int
    final_emails_sent: int
    orgs_not_one_final_email: int

    @property
    def exactly_once(self) -> bool:
        return (self.charges == self.renewal_invoices == self.final_emails_sent == self.orgs
                and not (self.orgs_not_one_invoice or self.invoices_charged_twice or self.orgs_not_one_final_email))

    def describe(self) -> str:
        verdict = "exactly once" if self.exactly_once else "NOT EXACTLY ONCE"
        return (f"{verdict}: {self.charges} charges ({self.declined} declined) on {self.renewal_invoices} renewal "
                f"invoices, {self.final_emails_sent} receipt/payment_failed e-mails sent; orgs without exactly "
                f"one invoice {self.orgs_not_one_invoice}, invoices charged twice {self.invoices_charged_twice}, "
                f"orgs without exactly one e-mail {self.orgs_not_one_final_email}")


def check_ledger(db: Database, org_ids: list[str]) -> Ledger:
    finals = ("receipt", "payment_failed")
    with db.transaction() as session:
        invoices = dict(session.execute(select(Invoice.org_id, func.count()).where(
            Invoice.org_id.in_(org_ids), Invoice.kind == InvoiceKind.RENEWAL).group_by(Invoice.org_id)).all())
        per_invoice = session.execute(select(Payment.invoice_id, func.count()).join(
            Invoice, Invoice.id == Payment.invoice_id).where(Invoice.org_id.in_(org_ids)).group_by(
            Payment.invoice_id)).all()
        declined = session.scalar(select(func.count()).select_from(Payment).join(
            Invoice, Invoice.id == Payment.invoice_id).where(Invoice.org_id.in_(org_ids),
                                                            Payment.outcome == "declined"))
        emails = dict(session.execute(select(EmailMessage.org_id, func.count()).where(
            EmailMessage.org_id.in_(org_ids), EmailMessage.template.in_(finals),
            EmailMessage.status == "sent").group_by(EmailMessage.org_id)).all())
    return Ledger(orgs=len(org_ids), charges=sum(count for _, count in per_invoice), declined=declined,
                  renewal_invoices=sum(invoices.values()),
                  orgs_not_one_invoice=sum(1 for org in org_ids if invoices.get(org) != 1),
                  invoices_charged_twice=sum(1 for _, count in per_invoice if count > 1),
                  final_emails_sent=sum(emails.values()),
                  orgs_not_one_final_email=sum(1 for org in org_ids if emails.get(org) != 1))
