"""`billing org create|show|history|address|tax|list`: the org as staff see it."""

import asyncio
from datetime import datetime, timezone
from typing import Optional

import typer
from rich.table import Table

from domain.errors import DomainError
from domain.limits import cut, shown
from domain.states import ChargeOutcome
from workers.cli.choices import Currency, ListedCycle, Locale, Status, BillingCycle, complete_new_org_plan, \
    complete_plan
from workers.cli.common import (IN_THE_DATABASE, JSON_OPTION_HELP, ExitCode, checked_exit, configured_catalog, console,
                                database, fail, group, note, print_json, settings, to_jsonable, unknown_org)

org_app = group("org")


def parse_user(spec: str, index: int):
    from domain.onboarding import NewUser
    email, _, gb = spec.partition(":")
    try:
        storage = float(gb) if gb else 0.0
    except ValueError:
        fail(f"users[{index}].storage_gb: {shown(gb)} is not a number (use EMAIL:GB)", ExitCode.USAGE)
    return NewUser(email, storage)


def refused(err: DomainError, prefix: str = "") -> None:
    """A domain refusal before anything is written: a bad value is bad usage (2), anything else a
    refusal (1); an org the database does not have is named with the setting to check."""
    from domain.errors import UnknownOrg
    fail(prefix + err.message + (IN_THE_DATABASE if isinstance(err, UnknownOrg) else ""), checked_exit(err))


COUNTRY_HELP = ("The buyer's country, ISO 3166 alpha-2 (ID, US, ...): its tax rules apply to the org's invoices "
                "(catalog `taxes`; none listed: no tax)")
TAX_ID_HELP = "The buyer's tax number (NPWP), printed on its invoices"


# A paid plan's org: who pays its first cycle, said once for the refusal and the help.
PAID_PLAN_CHOICE = ("a new customer pays its first cycle now: give its card on standard input (echo NUMBER | "
                    "billing org create ...) or at the prompt; an existing customer moved in from another system "
                    "needs --paid-through DATE --by STAFF_EMAIL instead (no charge, first renewal on DATE)")


@org_app.command("create")
def org_create(org_id: str = typer.Argument(..., help="Org id: lowercase letters, digits, '-', '_'"),
               name: str = typer.Option(..., help="Org name shown in e-mails"),
               admin: str = typer.Option(..., help="Admin e-mail"),
               user: list[str] = typer.Option([], help="A user as EMAIL:GB (repeatable)"),
               locale: Locale = typer.Option("en", help="Language of e-mails and invoices"),
               currency: Currency = typer.Option("USD", help="Currency of prices and invoices"),
               plan: str = typer.Option("trial", help="trial, free or a paid plan id",
                                        autocompletion=complete_new_org_plan),
               cycle: Optional[BillingCycle] = typer.Option(None, help="For a paid plan"),
               paid_through: Optional[str] = typer.Option(
                   None, help="An existing customer moved in from another system: its current cycle is paid until "
                              "this date (YYYY-MM-DD, midnight UTC, or an ISO 8601 time), its first renewal here; "
                              "nothing is charged now. Needs --by"),
               by: Optional[str] = typer.Option(None, "--by", help="Billing staff vouching for --paid-through "
                                                                  "(kept in the audit log)"),
               country: Optional[str] = typer.Option(None, help=COUNTRY_HELP),
               tax_id: Optional[str] = typer.Option(None, "--tax-id", help=TAX_ID_HELP)) -> None:
    """Create an org (a 15-day Professional trial by default) and start its workflow.

    On a paid plan a new customer pays its first cycle at once, with the card read from standard
    input or a hidden prompt: a declined card creates nothing. An existing customer moved in from
    another system gives --paid-through instead."""
    from domain.onboarding import NewOrg, check_paid_through, validate_new_org
    config = settings()
    catalog = configured_catalog()
    paid = plan in catalog.plans and plan != "free"
    if paid and cycle is None:
        fail(f"--cycle: the paid plan {plan} needs --cycle monthly or --cycle yearly", ExitCode.USAGE)
    now = datetime.now(timezone.utc)
    moment = _moment(paid_through, "--paid-through") if paid_through is not None else None
    if moment is not None:
        if not by:
            fail("--by: --paid-through needs --by naming the billing staff who vouches for the cycle paid elsewhere "
                 "(kept in the audit log)", ExitCode.USAGE)
        if not config.policy.is_staff(by):
            fail(f"--paid-through: only billing staff may move in a customer whose cycle was paid elsewhere; {by} "
                 "is not billing staff (BILLING_BILLING_STAFF)", ExitCode.REFUSED)
    try:
        new = validate_new_org(NewOrg(id=org_id, name=name, admin_email=admin,
                                      users=[parse_user(u, i) for i, u in enumerate(user)], locale=locale.value,
                                      currency=currency.value, plan=plan, cycle=cycle.value if cycle else None,
                                      paid_through=moment, moved_in_by=by if moment else None,
                                      country=country, tax_id=tax_id),
                               catalog, config.policy.limits)
        check_paid_through(new, now)
    except DomainError as err:
        refused(err)
    card = _card_for(new)
    if paid and moment is None:
        asyncio.run(_open_new_customer(config, new, card))
        return

    async def create() -> None:
        from db.orgs import set_card
        from services.orgs import create_org
        from workers.runtime.temporal import connect
        from workflows.starter import start_org_workflow
        client = await connect(config)   # Temporal first: when it is down, nothing is saved (exit 3)
        try:
            with database().transaction() as session:
                create_org(session, new, catalog, config.policy, now)
                if card is not None:
                    set_card(session, new.id, card.token, card.brand, card.last4)
        except DomainError as err:   # the stored state said no (an org with this id exists)
            fail(err.message, ExitCode.REFUSED)
        try:
            await start_org_workflow(client, new.id, config.temporal_task_queue, new.name, new.admin_email)
        except Exception as err:  # noqa: BLE001
            from workers.cli.outage import unavailable
            cause = unavailable(err) or " ".join(str(err).split())[:200]
            # The org is in the database: it is not lost, only not running yet.
            fail(f"org {new.id} saved, but its workflow did not start: {cause}; once Temporal is reachable, "
                 "`billing reconcile` starts it (the nightly reconciliation would too)", ExitCode.UNAVAILABLE)
    asyncio.run(create())
    moved = f"; moved in, paid through {moment:%Y-%m-%d %H:%M} UTC (no charge)" if moment else ""
    console.print(f"org {new.id} created ({len(new.users)} users){moved}; workflow org-{new.id} started",
                  highlight=False)


def _card_for(new):  # noqa: ANN001, ANN202  (a validated NewOrg -> CardDetails | None)
    """The card of an org on a paid plan: a new customer's is required (a prompt in a terminal,
    else standard input); a customer moved in may pipe one for its renewals. Tokenised here, as the
    gateway's card form would: the number goes no further."""
    from domain.cards import sandbox_tokenise
    from workers.cli.changes import card_number_given
    if not new.paid:
        return None
    new_customer = new.paid_through is None
    number = card_number_given("Card number (pays the first cycle)", ask=new_customer)
    if number is None:
        if new_customer:
            fail(f"--plan {new.plan}: {PAID_PLAN_CHOICE}", ExitCode.USAGE)
        return None
    try:
        return sandbox_tokenise(number)
    except DomainError as err:   # malformed (2), or refused by the gateway (1): nothing is created
        fail(f"org {new.id} not created: {err.message.split('; ')[0]}; nothing was saved", checked_exit(err))


async def _open_new_customer(config, new, card) -> None:  # noqa: ANN001
    """Start the org's workflow with the opening and wait for its answer: paid (the org exists,
    its workflow runs), declined or refused (nothing of the org exists)."""
    from temporalio.exceptions import WorkflowAlreadyStartedError
    from db.queries import org_exists
    from domain.money import format_money
    from workers.runtime.temporal import connect
    from workflows.messages import Opening
    from workflows.starter import open_org
    client = await connect(config)   # Temporal first: when it is down, nothing is saved (exit 3)
    with database().transaction() as session:
        if org_exists(session, new.id):
            fail(f"id: an org with id {new.id!r} already exists", ExitCode.REFUSED)
    try:
        outcome = await open_org(client, Opening(new, card), config.temporal_task_queue)
    except WorkflowAlreadyStartedError:
        fail(f"id: an org with id {new.id!r} already exists, or is being created (its workflow org-{new.id} "
             "is running)", ExitCode.REFUSED)
    except Exception as err:  # noqa: BLE001
        from workers.cli.outage import unavailable
        from workers.runtime.operations import refusal_from
        fail(unavailable(err) or f"org create refused: {refusal_from(err).message}",
             ExitCode.UNAVAILABLE if unavailable(err) else ExitCode.REFUSED)
    if outcome.payment == ChargeOutcome.DECLINED:
        fail(f"org {new.id} not created: the card ending {card.last4} was declined ({outcome.decline_reason}); "
             "nothing was saved; run the command again with another card", ExitCode.REFUSED)
    if outcome.payment != ChargeOutcome.SUCCEEDED:
        fail(f"org create refused: {outcome.message}", ExitCode.REFUSED)
    console.print(f"{outcome.message} ({format_money(outcome.amount, new.currency, 'en')} charged to "
                  f"{card.brand} ending {card.last4}); workflow org-{new.id} started", highlight=False)


async def _state(org_id: str):
    from workers.runtime.temporal import connect
    from workflows.org import OrgWorkflow
    from workflows.starter import org_handle
    client = await connect(settings())
    return await org_handle(client, org_id).query(OrgWorkflow.state)


@org_app.command("show")
def org_show(org_id: str = typer.Argument(..., help="Org id"),
             as_json: bool = typer.Option(False, "--json", help=JSON_OPTION_HELP)) -> None:
    """The org's state as its workflow sees it (the database's, when the workflow cannot answer)."""
    from db.snapshots import load_state
    next_action, next_at, source = None, None, "workflow"
    try:
        view = asyncio.run(_state(org_id))
        snapshot, next_action, next_at = view.snapshot, view.next_action, view.next_action_at
    except Exception as err:  # noqa: BLE001  (workflow unreachable or missing: show the database's view)
        from workers.cli.outage import unavailable
        from workflows.messages import workflow_id_for
        source = "database"
        why = unavailable(err) or f"no running workflow {cut(workflow_id_for(org_id))} (`billing reconcile` starts it)"
        try:
            with database().transaction() as session:
                snapshot = load_state(session, org_id, settings().policy)
        except DomainError as db_err:
            unknown = db_err.type == "unknown_org"
            fail(db_err.message + (" (check BILLING_DATABASE_URL and BILLING_TEMPORAL_NAMESPACE)" if unknown else ""))
        except Exception as db_err:  # noqa: BLE001
            down = unavailable(db_err)
            if down is None or unavailable(err) is None:
                raise
            fail(f"{why}; and {down}", ExitCode.UNAVAILABLE)   # both out of reach: name both
        note(f"the database's view: {why}")
    if source == "workflow":
        snapshot = _with_stored_tax_details(org_id, snapshot)
    data = to_jsonable(snapshot)
    data["next_action"], data["next_action_at"] = next_action, to_jsonable(next_at)
    held = _holdings(snapshot)
    expiry = _card_expiry(org_id)
    if as_json:
        data["card_expiry"] = f"{expiry[0]:02d}/{expiry[1]}" if expiry else None
        data["holdings"] = to_jsonable(held)
        data["source"] = source
        print_json(data)
        return
    data["scheduled"] = _scheduled_text(snapshot)
    data["waiting_for_payment"] = (f"{snapshot.pending.summary} (invoice {snapshot.pending.invoice})"
                                   if snapshot.pending else None)
    data["contacts"] = (f"{snapshot.subscribers.subscribed} subscribed, {snapshot.subscribers.awaiting} awaiting "
                        f"upgrade (tier {snapshot.tier_contacts or 'none'})" if snapshot.contacts else None)
    from domain.cards import card_with_expiry
    data["card"] = card_with_expiry(snapshot.card_brand, snapshot.card_last4, expiry)
    table = Table(title=f"org {org_id}", show_header=False)
    data["holdings"] = ", ".join(f"{h.name} x{h.quantity}" + (f" (paid to {h.paid_through:%Y-%m-%d})"
                                                              if h.paid_through else " (unpaid)")
                                 for h in held)
    if snapshot.arrears:   # cycles served since dunning began, unpaid: settled with the dunning invoice
        data["arrears"] = ", ".join(unpaid.invoice for unpaid in snapshot.arrears)
    if snapshot.credit:
        from domain.money import format_money
        data["credit"] = f"{format_money(snapshot.credit, snapshot.currency, 'en')} (used by the next invoices)"
    for key in ("name", "admin_email", "country", "tax_id", "status", "plan", "cycle", "licences", "user_count", "card", "renews_at",
                "trial_ends_at", "holdings", "credit", "contacts", "scheduled", "waiting_for_payment", "dunning_invoice",
                "dunning_attempts", "arrears", "next_retry_at", "blocked_users", "next_action", "next_action_at"):
        value = data.get(key)
        if value not in (None, [], "", 0):
            table.add_row(key, str(value))
    console.print(table)


def _with_stored_tax_details(org_id: str, snapshot):
    """`billing org tax` writes the buyer's country and tax number to the database, where the
    next invoice reads them; the workflow's state has those of its last step until the next."""
    from dataclasses import replace

    from db.orgs import tax_details
    with database().transaction() as session:
        country, tax_id = tax_details(session, org_id)
    return replace(snapshot, country=country, tax_id=tax_id)


def _card_expiry(org_id: str) -> tuple[int, int] | None:
    """Kept by the Stripe gateway when the card was attached; None when the database is out of reach."""
    from db.payments import card_expiry
    try:
        with database().transaction() as session:
            return card_expiry(session, org_id)
    except Exception:  # noqa: BLE001  (the rest of the view is still worth printing)
        return None


def _holdings(snapshot):
    from domain.billing import holdings
    return holdings(snapshot, configured_catalog())


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
    if scheduled.cycle is not None:
        parts.append(f"switch to {scheduled.cycle} billing")
    if scheduled.tier is not None:
        parts.append(f"tier {scheduled.tier} contacts")
    parts += [f"{addon} ends" for addon in scheduled.addons]
    parts += [f"{unit.count} x {unit.unit_gb} GB end" for unit in scheduled.storage]
    return ", ".join(parts) or None


@org_app.command("history")
def org_history(org_id: str = typer.Argument(..., help="Org id"),
                as_json: bool = typer.Option(False, "--json", help=JSON_OPTION_HELP)) -> None:
    """The audit log: who asked what, when, and why."""
    from db.queries import event_log, org_exists
    with database().transaction() as session:
        if not org_exists(session, org_id):
            unknown_org(org_id)
        events = [{"at": event.at, "event": event.type, "details": event.data, "by": event.actor or None,
                   "reason": event.reason or None}
                  for event in event_log(session, org_id, by_time=True) if event.type != "operation"]
    if as_json:
        print_json({"org_id": org_id, "events": events})
        return
    table = Table(title=f"history of {org_id}")
    for column in ("at", "event", "details", "by", "reason"):
        table.add_column(column)
    for event in events:
        table.add_row(f"{event['at']:%Y-%m-%d %H:%M:%S}", event["event"],
                      ", ".join(f"{k}={v}" for k, v in event["details"].items()), event["by"] or "",
                      event["reason"] or "")
    console.print(table)


@org_app.command("address")
def org_address(org_id: str = typer.Argument(..., help="Org id"),
                address: str = typer.Argument(..., help="The billing address; \\n between lines; '' clears it"),
                by: Optional[str] = typer.Option(None, "--by", help="Who asks (audit log)")) -> None:
    """Set the billing address printed on the org's invoices and statements.

    From now on: an invoice is rendered with the address the org has when it is downloaded or
    e-mailed."""
    from db.orgs import set_billing_address
    from domain.onboarding import check_billing_address
    try:
        checked = check_billing_address(address.replace("\\n", "\n"))
        with database().transaction() as session:
            set_billing_address(session, org_id, checked, by, datetime.now(timezone.utc))
    except DomainError as err:
        refused(err)
    console.print(f"billing address of {org_id}: " + (checked.replace("\n", ", ") if checked else "cleared"),
                  highlight=False)


@org_app.command("tax")
def org_tax(org_id: str = typer.Argument(..., help="Org id"),
            country: str = typer.Option(..., help=COUNTRY_HELP + "; '' clears it (no tax)"),
            tax_id: Optional[str] = typer.Option(None, "--tax-id", help=TAX_ID_HELP + "; '' clears it; "
                                                                        "left out, the org keeps its own"),
            by: Optional[str] = typer.Option(None, "--by", help="Who asks (audit log)")) -> None:
    """Set the buyer's country and tax number (the tax of invoices issued from now on).

    The invoices issued from now on are taxed by the country's rules and print the tax number;
    those issued before keep the tax they were issued with."""
    from db.orgs import set_tax_details, tax_details
    from domain.tax import check_country, check_tax_id
    try:
        checked = check_country(country), check_tax_id(tax_id)
        with database().transaction() as session:
            if tax_id is None:
                checked = checked[0], tax_details(session, org_id)[1]
            set_tax_details(session, org_id, *checked, by, datetime.now(timezone.utc))
    except DomainError as err:
        refused(err)
    console.print(f"tax details of {org_id}: country {checked[0] or 'none'}, tax number {checked[1] or 'none'}",
                  highlight=False)


@org_app.command("list")
def org_list(status: list[Status] = typer.Option([], help="Only orgs in this status (repeatable)"),
             plan: list[str] = typer.Option([], help="Only orgs on this plan id (repeatable)",
                                            autocompletion=complete_plan),
             cycle: list[ListedCycle] = typer.Option([], help="Only orgs with this billing cycle (repeatable)"),
             large: Optional[bool] = typer.Option(None, "--large/--not-large",
                                                  help="Only large accounts, or only the others"),
             next_action_before: Optional[str] = typer.Option(
                 None, help="Only orgs whose next timed step (trial end, renewal, retry) comes before this "
                            "moment: YYYY-MM-DD (midnight UTC) or an ISO 8601 time"),
             as_json: bool = typer.Option(False, "--json", help=JSON_OPTION_HELP)) -> None:
    """Orgs matching every filter given (a Temporal visibility query; the database as fallback).

    Answered from the search attributes each org's workflow publishes; from the database when
    Temporal, or its search attributes, are not available. Standard error (and the JSON's
    "source") says which answered."""
    from workers.cli.org_list import OrgFilter, list_orgs
    config = settings()
    before = _moment(next_action_before, "--next-action-before") if next_action_before else None
    if plan:
        known = configured_catalog().plans
        for plan_id in plan:
            if plan_id not in known:
                fail(f"--plan: unknown plan {plan_id!r}; known plans: {', '.join(sorted(known))}", ExitCode.USAGE)
    wanted = OrgFilter(statuses=tuple(s.value for s in status), plans=tuple(plan),
                       cycles=tuple(c.value for c in cycle), large=large, next_action_before=before)
    listing = list_orgs(config, wanted)
    if listing.fallback_reason:
        note(f"answered by the database: {listing.fallback_reason}")
    else:
        from workers.cli.outage import temporal_target
        note(f"answered by Temporal visibility (namespace {temporal_target(config)[1]}, "
             f"task queue {config.temporal_task_queue}; a change shows there within a second or so)")
    if as_json:
        print_json({"source": listing.source, "fallback_reason": listing.fallback_reason,
                    "orgs": listing.orgs})
        return
    table = Table(title=f"{len(listing.orgs)} org(s)")
    for column in ("org", "name", "status", "plan", "cycle", "large", "dunning attempt", "next action at",
                   "scheduled change"):
        table.add_column(column)
    for row in listing.orgs:
        table.add_row(row.org_id, row.name or "", row.status or "?", row.plan or "?", row.cycle or "-",
                      "yes" if row.large_account else "no", str(row.dunning_attempt or 0),
                      f"{row.next_action_at:%Y-%m-%d %H:%M}" if row.next_action_at else "-",
                      row.scheduled_change or "-")
    console.print(table)


def _moment(text: str, option: str) -> datetime:
    """A day (midnight UTC) or an ISO 8601 moment (UTC unless it says otherwise)."""
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        fail(f"{option}: {text!r} is not a date; use YYYY-MM-DD or YYYY-MM-DDTHH:MM", ExitCode.USAGE)
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
