"""`billing`: the command line for billing staff and operators.

Every change goes through the org's workflow as a Temporal Update, so the CLI, the Temporal
UI and the simulator give the same answers; a refusal exits 1 with the workflow's message."""

import asyncio
import inspect
import json
import sys
import typing
from dataclasses import MISSING, fields, is_dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Optional

import typer
from rich.console import Console
from rich.table import Table

from domain import requests as rq
from domain.errors import DomainError
from domain.operations import OPERATIONS

app = typer.Typer(help="Renewal and dunning pipeline for SaaS organisations.", no_args_is_help=True,
                  pretty_exceptions_enable=False)
org_app = typer.Typer(help="Create and inspect organisations.", no_args_is_help=True)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
temporal_app = typer.Typer(help="Temporal cluster set-up.", no_args_is_help=True)
dunning_app = typer.Typer(help="Orgs in dunning.", no_args_is_help=True)
for sub, name in ((org_app, "org"), (db_app, "db"), (temporal_app, "temporal"), (dunning_app, "dunning")):
    app.add_typer(sub, name=name)
# The groups of the operations' commands (domain.operations: `cli`), with their help.
GROUP_HELP = {"storage": "Storage units.", "usage": "Mailbox usage reports.",
              "escalation": "Large-account escalations.", "addon": "Flat add-ons (premium support).",
              "tier": "The subscriber tier and marketing contacts."}
GROUPS: dict[str, typer.Typer] = {}


def group(name: str) -> typer.Typer:
    if name not in GROUPS:
        GROUPS[name] = typer.Typer(help=GROUP_HELP.get(name), no_args_is_help=True)
        app.add_typer(GROUPS[name], name=name)
    return GROUPS[name]

# Piped output (scripts, grep) gets wide tables instead of rows wrapped at 80 columns.
console = Console(width=None if sys.stdout.isatty() else 200)
errors = Console(stderr=True, width=None if sys.stderr.isatty() else 200)


def fail(message: str, code: int = 1) -> None:
    errors.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)  # one line, however long
    raise typer.Exit(code)


def settings():
    from workers.config import Settings
    return Settings()


def database():
    from db.session import Database
    return Database(settings().database_url)


def to_jsonable(value: Any) -> Any:
    if is_dataclass(value):
        return {f.name: to_jsonable(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: to_jsonable(v) for k, v in value.items()}
    return value


# ---- database and cluster ----------------------------------------------------------------------

@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply the Alembic migrations to BILLING_DATABASE_URL."""
    from db.migrate import upgrade
    upgrade(settings().database_url)
    console.print("database schema is up to date")


@temporal_app.command("register-search-attributes")
def register_search_attributes() -> None:
    """Register the custom search attributes on the configured namespace (once per cluster)."""
    async def run() -> None:
        from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
        from workers.search_attributes import api_types
        from workers.temporal import connect
        config = settings()
        client = await connect(config)
        await client.operator_service.add_search_attributes(AddSearchAttributesRequest(
            namespace=config.temporal_namespace, search_attributes=api_types()))
    asyncio.run(run())
    console.print("search attributes registered")


# ---- organisations -----------------------------------------------------------------------------------

def parse_user(spec: str, index: int):
    from domain.onboarding import NewUser
    email, _, gb = spec.partition(":")
    from domain.limits import shown
    try:
        storage = float(gb) if gb else 0.0
    except ValueError:
        fail(f"users[{index}].storage_gb: {shown(gb)} is not a number (use EMAIL:GB)", 2)
    return NewUser(email, storage)


@org_app.command("create")
def org_create(org_id: str = typer.Argument(..., help="Org id: lowercase letters, digits, '-', '_'"),
               name: str = typer.Option(..., help="Org name shown in e-mails"),
               admin: str = typer.Option(..., help="Admin e-mail"),
               user: list[str] = typer.Option([], help="A user as EMAIL:GB (repeatable)"),
               locale: str = typer.Option("en", help="en | id"),
               currency: str = typer.Option("USD", help="USD | IDR"),
               plan: str = typer.Option("trial", help="trial, free or a paid plan id"),
               cycle: Optional[str] = typer.Option(None, help="monthly | yearly, for a paid plan")) -> None:
    """Create an org (a 15-day Professional trial by default) and start its workflow."""
    from domain.onboarding import NewOrg, validate_new_org
    from db.orgs import create_org
    from domain.catalog import load_catalog
    config = settings()
    catalog = load_catalog(config.catalog_path)
    try:
        new = validate_new_org(NewOrg(id=org_id, name=name, admin_email=admin,
                                      users=[parse_user(u, i) for i, u in enumerate(user)], locale=locale,
                                      currency=currency, plan=plan, cycle=cycle), catalog, config.policy.limits)
        db = database()
        with db.transaction() as session:
            create_org(session, new, catalog, config.policy, datetime.now(timezone.utc))
    except DomainError as err:
        fail(err.message, 2)

    async def start() -> None:
        from workers.temporal import connect
        from workflows.starter import start_org_workflow
        client = await connect(config)
        await start_org_workflow(client, new.id, config.temporal_task_queue, new.name, new.admin_email)
    try:
        asyncio.run(start())
    except Exception as err:  # noqa: BLE001
        errors.print(f"[yellow]warning:[/] org saved, but its workflow did not start ({err}); "
                     "the nightly reconciliation (or `billing reconcile`) will start it")
        raise typer.Exit(1)
    console.print(f"org {new.id} created ({len(new.users)} users); workflow org-{new.id} started")


async def _state(org_id: str):
    from workers.temporal import connect
    from workflows.org import OrgWorkflow
    from workflows.starter import org_handle
    client = await connect(settings())
    return await org_handle(client, org_id).query(OrgWorkflow.state)


@org_app.command("show")
def org_show(org_id: str, as_json: bool = typer.Option(False, "--json", help="Print JSON")) -> None:
    """The org's state as its workflow sees it (falls back to the database)."""
    from db.state import load_state
    next_action, next_at = None, None
    try:
        view = asyncio.run(_state(org_id))
        snapshot, next_action, next_at = view.snapshot, view.next_action, view.next_action_at
    except Exception:  # noqa: BLE001  (workflow unreachable: show the database's view)
        try:
            with database().transaction() as session:
                snapshot = load_state(session, org_id, settings().policy)
        except DomainError as err:
            fail(err.message)
    data = to_jsonable(snapshot)
    data["next_action"], data["next_action_at"] = next_action, to_jsonable(next_at)
    held = _holdings(snapshot)
    if as_json:
        data["holdings"] = to_jsonable(held)
        console.print_json(json.dumps(data))
        return
    data["scheduled"] = _scheduled_text(snapshot)
    data["waiting_for_payment"] = (f"{snapshot.pending.summary} (invoice {snapshot.pending.invoice})"
                                   if snapshot.pending else None)
    data["contacts"] = (f"{snapshot.subscribers.subscribed} subscribed, {snapshot.subscribers.awaiting} awaiting "
                        f"upgrade (tier {snapshot.tier_contacts or 'none'})" if snapshot.contacts else None)
    table = Table(title=f"org {org_id}", show_header=False)
    data["holdings"] = ", ".join(f"{h.name} x{h.quantity}" + (f" (paid to {h.paid_through:%Y-%m-%d})"
                                                              if h.paid_through else " (unpaid)")
                                 for h in held)
    for key in ("name", "admin_email", "status", "plan", "cycle", "licences", "user_count", "renews_at",
                "trial_ends_at", "holdings", "contacts", "scheduled", "waiting_for_payment", "dunning_invoice",
                "dunning_attempts", "next_retry_at", "blocked_users", "next_action", "next_action_at"):
        value = data.get(key)
        if value not in (None, [], "", 0):
            table.add_row(key, str(value))
    console.print(table)


def _holdings(snapshot):
    from domain.billing import holdings
    from domain.catalog import load_catalog
    return holdings(snapshot, load_catalog(settings().catalog_path))


def _scheduled_text(snapshot) -> str | None:
    """What changes at the renewal, in words."""
    scheduled = snapshot.scheduled
    parts = []
    if scheduled.cancel:
        parts.append("cancellation")
    if scheduled.plan:
        parts.append(f"plan {scheduled.plan}")
    if scheduled.licences is not None:
        parts.append(f"{scheduled.licences} licences")
    if scheduled.tier is not None:
        parts.append(f"tier {scheduled.tier} contacts")
    parts += [f"{addon} ends" for addon in scheduled.addons]
    parts += [f"{unit.count} x {unit.unit_gb} GB end" for unit in scheduled.storage]
    return ", ".join(parts) or None


@org_app.command("history")
def org_history(org_id: str) -> None:
    """The audit log: who asked what, when, and why."""
    from sqlalchemy import select
    from db.models import OrgEvent, Organisation
    with database().transaction() as session:
        if session.get(Organisation, org_id) is None:
            fail(f"unknown org {org_id!r}")
        events = session.scalars(select(OrgEvent).where(OrgEvent.org_id == org_id).order_by(OrgEvent.at, OrgEvent.id))
        table = Table(title=f"history of {org_id}")
        for column in ("at", "event", "details", "by", "reason"):
            table.add_column(column)
        for event in events:
            if event.type == "operation":
                continue
            table.add_row(f"{event.at:%Y-%m-%d %H:%M:%S}", event.type,
                          ", ".join(f"{k}={v}" for k, v in (event.data or {}).items()), event.actor or "",
                          event.reason or "")
    console.print(table)


@org_app.command("address")
def org_address(org_id: str = typer.Argument(..., help="Org id"),
                address: str = typer.Argument(..., help="The billing address; \\n between lines; '' clears it"),
                by: Optional[str] = typer.Option(None, "--by", help="Who asks (audit log)")) -> None:
    """Set the billing address printed on the org's invoices and statements (from now on: an
    invoice is rendered with the address the org has when it is downloaded or e-mailed)."""
    from db.orgs import set_billing_address
    from domain.onboarding import check_billing_address
    try:
        checked = check_billing_address(address.replace("\\n", "\n"))
        with database().transaction() as session:
            set_billing_address(session, org_id, checked, by, datetime.now(timezone.utc))
    except DomainError as err:
        fail(err.message, 2 if err.type == "invalid_input" else 1)
    console.print(f"billing address of {org_id}: " + (checked.replace("\n", ", ") if checked else "cleared"),
                  highlight=False)


@app.command("invoices")
def invoices(org_id: str = typer.Argument(..., help="Org id"),
             as_json: bool = typer.Option(False, "--json", help="Print JSON")) -> None:
    """Payment history: every invoice with its status and payments (the card, the date, the outcome)."""
    from sqlalchemy import select
    from db.invoices import invoice_document
    from db.models import Invoice, Organisation
    from domain.money import format_money
    with database().transaction() as session:
        org = session.get(Organisation, org_id)
        if org is None:
            fail(f"unknown org {org_id!r}")
        documents = [invoice_document(session, number) for number in
                     session.scalars(select(Invoice.number).where(Invoice.org_id == org_id).order_by(Invoice.id))]
    if as_json:
        console.print_json(json.dumps([{key: value for key, value in to_jsonable(doc).items()
                                        if key not in ("buyer", "lines")} for doc in documents]))
        return
    table = Table(title=f"invoices of {org_id}")
    for column in ("number", "date", "kind", "total", "status", "payments"):
        table.add_column(column)
    for doc in documents:
        table.add_row(doc.number, f"{doc.issued_at:%Y-%m-%d}", str(doc.kind), format_money(doc.total, doc.currency,
                                                                                           org.locale),
                      str(doc.status), ", ".join(
                          f"#{p.attempt} {p.at:%Y-%m-%d} {p.outcome}" + (f" ({p.decline_reason})" if p.decline_reason
                                                                         else "")
                          + (f" {p.card_brand} {p.card_last4}" if p.card_last4 else "") for p in doc.payments))
    console.print(table)


def _documents():
    from activities.documents import Documents
    from domain.catalog import load_catalog
    config = settings()
    return Documents(load_catalog(config.catalog_path), config.seller)


STDOUT = Path("-")


def _writable(*paths: Path | None) -> None:
    """Refuse a path that cannot be written before anything is rendered. `-` is standard output
    (for one of them)."""
    import os
    if sum(path == STDOUT for path in paths) > 1:
        fail("only one output can go to standard output (-)", 2)
    for path in paths:
        if path is None or path == STDOUT:
            continue
        folder = path.parent if str(path.parent) else Path(".")
        if not folder.is_dir():
            fail(f"cannot write {path}: folder {folder} does not exist", 2)
        if path.is_dir():
            fail(f"cannot write {path}: it is a folder", 2)
        if path.exists() and not path.resolve().is_file():
            fail(f"cannot write {path}: it is not a regular file", 2)
        if not os.access(folder, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
            fail(f"cannot write {path}: permission denied", 2)


def _rendered(html: str, html_path: Path | None, pdf_path: Path | None) -> list[tuple[Path, bytes]]:
    """Every output asked for, in memory: nothing is written until all of them rendered."""
    from activities.documents import PdfRendererMissing, pdf
    outputs = []
    if html_path is not None:
        outputs.append((html_path, html.encode("utf-8")))
    if pdf_path is not None:
        try:
            outputs.append((pdf_path, pdf(html)))
        except PdfRendererMissing as err:
            fail(str(err))
    return outputs


def _write(outputs: list[tuple[Path, bytes]]) -> list[str]:
    """Write the outputs, all or none; the files written."""
    from activities.documents import write_documents
    files = [(path.resolve(), content) for path, content in outputs if path != STDOUT]  # through a symlink
    try:
        write_documents(files)
    except OSError as err:
        fail(f"cannot write {err.filename}: {err.strerror or err}", 2)
    for path, content in outputs:
        if path == STDOUT:
            sys.stdout.buffer.write(content)
            sys.stdout.flush()
    return [str(path) for path, _ in outputs if path != STDOUT]


@app.command("invoice")
def invoice_render(number: str = typer.Argument(..., help="Invoice number, e.g. INV-acme-0001"),
                   pdf: Optional[Path] = typer.Option(None, "--pdf", help="Write the invoice as PDF here (- for standard output)"),
                   html: Optional[Path] = typer.Option(None, "--html", help="Write the invoice as HTML here (- for standard output)")) -> None:
    """An invoice as a document, in the org's language: PDF and/or HTML."""
    from db.invoices import invoice_document
    if not number.strip():
        fail("give an invoice number, e.g. INV-acme-0001", 2)
    if pdf is None and html is None:
        fail("say where to write the invoice: --pdf FILE and/or --html FILE (- for standard output)", 2)
    _writable(pdf, html)
    with database().transaction() as session:
        try:
            document = invoice_document(session, number)
        except LookupError as err:
            fail(str(err))
    written = _write(_rendered(_documents().invoice_html(document), html, pdf))
    if written:   # on stderr: standard output may be carrying the document
        errors.print(f"invoice {number} written to {' and '.join(written)}", highlight=False, soft_wrap=True)


def _day(text: str, option: str) -> datetime:
    """Midnight UTC of a YYYY-MM-DD day (nothing else: not a time, not 20260301)."""
    from datetime import date
    try:
        if len(text) != 10:
            raise ValueError(text)
        day = date.fromisoformat(text)
    except ValueError:
        fail(f"{option}: {text!r} is not a date; use YYYY-MM-DD", 2)
    return datetime(day.year, day.month, day.day, tzinfo=timezone.utc)


@app.command("statement")
def statement_render(org_id: str = typer.Argument(..., help="Org id"),
                     start: str = typer.Option(..., "--from", help="First day, YYYY-MM-DD (UTC)"),
                     end: str = typer.Option(..., "--to", help="Last day, YYYY-MM-DD (UTC), included"),
                     pdf: Optional[Path] = typer.Option(None, "--pdf", help="Write the statement as PDF here (- for standard output)"),
                     html: Optional[Path] = typer.Option(None, "--html", help="Write the statement as HTML here (- for standard output)"),
                     as_json: bool = typer.Option(False, "--json", help="Print the statement as JSON")) -> None:
    """Statement of account: every invoice and payment between two days, with the opening and
    closing balance the org owes (what finance asks for at month end)."""
    from datetime import date, timedelta
    from db.invoices import statement
    first, last = _day(start, "--from"), _day(end, "--to")
    if first > last:
        fail(f"--from {start} comes after --to {end}", 2)
    if pdf is None and html is None and not as_json:
        fail("say what to produce: --pdf FILE, --html FILE and/or --json", 2)
    if as_json and STDOUT in (pdf, html):
        fail("--json prints to standard output: write the document to a file", 2)
    _writable(pdf, html)
    # The range ends where the day after --to begins (9999-12-31 has no day after it).
    end_of_range = last + timedelta(days=1) if last.date() < date.max else datetime.max.replace(tzinfo=timezone.utc)
    with database().transaction() as session:
        try:
            found = statement(session, org_id, first, end_of_range)
        except LookupError as err:
            fail(str(err))
    outputs = _rendered(_documents().statement_html(found), html, pdf) if pdf or html else []
    if as_json:
        console.print_json(json.dumps({**to_jsonable(found), "closing": found.closing}))
    if outputs:
        written = _write(outputs)
        if written:
            errors.print(f"statement of {org_id} written to {' and '.join(written)}", highlight=False,
                         soft_wrap=True)


# ---- changes through the workflow ------------------------------------------------------------

def operate(org_id: str, kind: str, request: Any) -> None:
    from workers.operations import OperationRefused, send_operation
    from workers.temporal import connect

    async def run():
        client = await connect(settings())
        return await send_operation(client, org_id, kind, request)
    try:
        outcome = asyncio.run(run())
    except OperationRefused as err:
        fail(f"{kind} refused: {err.message}")
    console.print(f"[green]{kind}:[/] {outcome.message} (status {outcome.status})", highlight=False)
    if outcome.payment == "declined":
        raise typer.Exit(1)


def _annotation(hint: Any) -> Any:
    """Typer reads Optional[...], not PEP 604 unions."""
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    return Optional[args[0]] if type(None) in typing.get_args(hint) else hint


def _parameters(operation) -> list[inspect.Parameter]:
    params = [inspect.Parameter("org_id", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=str,
                                default=typer.Argument(..., help="Org id"))]
    for item in fields(operation.inputs):
        meta = item.metadata
        if item.name in ("requested_by", "reason") and not operation.audited:
            continue
        required = item.default is MISSING or (item.name == "requested_by" and operation.actor_required) \
            or (item.name == "reason" and operation.reason_required)
        default = ... if required else item.default
        if meta.get("positional"):
            spec = typer.Argument(default, help=meta.get("help"), show_default=False)
        else:
            flag = meta.get("flag") or f"--{item.name.replace('_', '-')}"
            spec = typer.Option(default, flag, help=meta.get("help"), show_default=not required)
        params.append(inspect.Parameter(item.name, inspect.Parameter.KEYWORD_ONLY, annotation=_annotation(item.type),
                                        default=spec))
    return params


def _operation_command(operation) -> Callable[..., None]:
    """A command for one operation of the registry: its fields become the command's arguments."""
    def command(org_id: str, **values: Any) -> None:
        try:
            request = operation.request_from_input(values)
            operation.check_fields(request, settings().policy.limits)  # bad input: nothing is sent
        except DomainError as err:
            fail(f"{operation.name} refused: {err.message}", 2)
        operate(org_id, operation.name, request)
    command.__signature__ = inspect.Signature(_parameters(operation))
    command.__doc__ = operation.description
    command.__name__ = operation.name
    return command


for _operation in OPERATIONS.values():
    if not _operation.generated:
        continue
    *_group, _name = _operation.cli
    (group(_group[0]) if _group else app).command(_name)(_operation_command(_operation))


@group("usage").command("import")
def usage_import(org_id: str = typer.Argument(..., help="Org id"),
                 file: Path = typer.Argument(..., help="CSV file: email,storage_gb (a header line is optional)")) -> None:
    """Import usage from a CSV file, all or nothing: the whole file is checked first (a bad row
    refuses it, naming the line), then sent as one Update (a few for a very large file)."""
    import re
    from workers.operations import OperationRefused, send_operation
    from workers.temporal import connect
    from workers.usage_import import UsageImportError, decode, parse_usage_csv
    config = settings()
    try:
        usage = parse_usage_csv(decode(file.read_bytes()), config.policy.limits)
    except UsageImportError as err:
        fail(f"{file}: {err}", 2)
    except OSError as err:
        fail(f"cannot read {file}: {err.strerror or err}", 2)
    batches = usage.batches()
    if len(batches) > 1:
        _all_users_known(org_id, usage)  # several Updates: no row may be refused after the first is applied

    def at_line(message: str, first: int) -> str:
        return re.sub(r"rows\[(\d+)\]", lambda m: f"line {usage.lines[first + int(m.group(1))]}", message)

    async def run() -> list:
        from rich.progress import Progress
        client = await connect(config)
        outcomes = []
        with Progress(console=errors, transient=True, disable=len(usage.rows) < 10_000) as progress:
            task = progress.add_task(f"importing {len(usage.rows):,} rows", total=len(usage.rows))
            for first, rows in batches:
                try:
                    outcomes.append(await send_operation(client, org_id, "import_usage", rq.ImportUsageRequest(rows)))
                except OperationRefused as err:
                    done = f" ({first:,} rows before line {usage.lines[first]} were applied)" if first else ""
                    fail(f"usage import refused: {at_line(err.message, first)}{done}")
                progress.advance(task, len(rows))
        return outcomes
    outcomes = asyncio.run(run())
    console.print(f"[green]import_usage:[/] usage of {len(usage.rows):,} user(s) imported into {org_id} "
                  f"in {len(outcomes)} update(s) (status {outcomes[-1].status})", highlight=False)


def _all_users_known(org_id: str, usage) -> None:
    """The decision's own check of a usage file's users (db.state.StoredUsers), on the whole file."""
    from db.state import StoredUsers
    from domain.errors import DomainError
    from domain.users import check_member
    emails = [email for email, _ in usage.rows]
    with database().transaction() as session:
        users = StoredUsers(session, org_id)
        missing = users.unknown(emails)
        if missing:
            try:
                check_member(users, missing[0], f"line {usage.lines[emails.index(missing[0])]}: user", org_id)
            except DomainError as err:
                fail(f"usage import refused: {err.message}; nothing was imported")


@dunning_app.command("list")
def dunning_list() -> None:
    """Orgs in dunning, with the attempt number and the next retry."""
    from sqlalchemy import select
    from db.models import Invoice, Subscription
    from domain.states import OrgStatus
    table = Table(title="orgs in dunning")
    for column in ("org", "status", "invoice", "attempts", "next retry", "first response due"):
        table.add_column(column)
    with database().transaction() as session:
        rows = session.execute(select(Subscription, Invoice.number).join(Invoice, Invoice.id == Subscription.dunning_invoice_id)
                               .where(Subscription.status.in_([OrgStatus.PAST_DUE, OrgStatus.ESCALATED]))
                               .order_by(Subscription.next_retry_at))
        for sub, number in rows:
            table.add_row(sub.org_id, str(sub.status), number, str(sub.dunning_attempts),
                          f"{sub.next_retry_at:%Y-%m-%d %H:%M}" if sub.next_retry_at else "-",
                          f"{sub.first_response_due:%Y-%m-%d %H:%M}" if sub.first_response_due else "-")
    console.print(table)


@app.command("reconcile")
def reconcile(schedule: bool = typer.Option(False, help="Create the nightly Temporal Schedule instead")) -> None:
    """Start a workflow for every org that has none; report disagreements."""
    from workers.schedules import ensure_reconcile_schedule, run_reconcile_now
    config = settings()
    if schedule:
        asyncio.run(ensure_reconcile_schedule(config))
        console.print("nightly reconciliation schedule is in place")
        return
    report = asyncio.run(run_reconcile_now(config))
    console.print(f"checked {report.checked} org(s); started {report.started or 'none'}; stuck: "
                  f"{report.activity_failing} with a failing activity, {report.step_overdue} with a step overdue")
    for line in report.disagreements:
        console.print(f"[yellow]disagreement:[/] {line}")


@app.command("simulate")
def simulate(scenario: Optional[Path] = typer.Argument(None, help="Scenario YAML file"),
             as_json: bool = typer.Option(False, "--json", help="Print the timeline as JSON"),
             example: bool = typer.Option(False, "--example", help="Print a commented example scenario")) -> None:
    """Dry-run one org through its life on the time-skipping test server (see SIMULATE.md)."""
    from workers.simulate import run_simulate_command
    raise typer.Exit(run_simulate_command(scenario, as_json, example))


def _unavailable(err: BaseException) -> str | None:
    """A one-line message for Temporal or the database being out of reach, naming the setting."""
    from sqlalchemy.exc import DBAPIError
    from temporalio.service import RPCError, RPCStatusCode
    config = settings()
    if isinstance(err, RuntimeError) and "client connect" in str(err) or \
            isinstance(err, RPCError) and err.status in (RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED):
        cause = " ".join(str(err.__cause__ or err).split())[:160]
        return f"Temporal unreachable at {config.temporal_address} ({cause}); check BILLING_TEMPORAL_ADDRESS"
    if isinstance(err, DBAPIError):
        cause = " ".join(str(getattr(err, "orig", err)).split())[:160]
        if "no such table" in cause or ("relation" in cause and "does not exist" in cause):
            return f"the database has no billing tables ({cause}): run `billing db upgrade`, or check BILLING_DATABASE_URL"
        if err.connection_invalidated or type(err).__name__ == "OperationalError":
            return f"database unreachable ({cause}); check BILLING_DATABASE_URL"
    return None


def main() -> None:
    """The `billing` command: Temporal or the database out of reach is one line and exit 3."""
    from pydantic import ValidationError
    try:
        app()
    except ValidationError as err:  # a BILLING_ setting out of its range
        problem = err.errors()[0]
        name = f"BILLING_{str(problem['loc'][0]).upper()}" if problem.get("loc") else "a BILLING_ setting"
        errors.print(f"[bold red]error:[/] {name}: {problem['msg']}", highlight=False, soft_wrap=True)
        raise SystemExit(2) from None
    except Exception as err:  # noqa: BLE001
        message = _unavailable(err)
        if message is None:
            raise
        errors.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
        raise SystemExit(3) from None


if __name__ == "__main__":
    main()
