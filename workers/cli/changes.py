"""The commands of the operations (domain.operations: one per entry, where its `cli` says),
and `billing usage import`.

Every change goes through the org's workflow as a Temporal Update, so the CLI, the Temporal UI
and the simulator give the same answers: done (0), refused with the workflow's message (1), or a
card declined (1, said plainly: the change waits for payment)."""

import asyncio
import inspect
import re
import sys
import typing
from dataclasses import MISSING, fields
from enum import Enum
from pathlib import Path
from typing import Any, Callable, Optional

import typer
from rich.markup import escape
from temporalio.exceptions import ApplicationError
from typer.core import TyperCommand

from domain import requests as rq
from domain.errors import DomainError
from domain.operations import OPERATIONS, Operation
from domain.requests import Kind
from domain.states import ChargeOutcome
from workers.cli.choices import BillingCycle, Resolution, Switch, complete_addon, complete_plan, complete_unit
from workers.cli.common import (ExitCode, app, checked_exit, configured_catalog, console, database, errors, fail,
                                group, refusal_exit, settings)

# Operations whose commands were top-level before the noun groups: their former names still work
# (hidden), for the scripts written against them.
FORMER_TOP_LEVEL = ("upgrade", "add_licences", "add_user", "switch_to_yearly", "update_card", "request_downgrade",
                    "cancel_downgrade", "cancel", "undo_cancel", "retry_payment")

# What a field of a given kind offers on the command line: a fixed set is an Enum, a catalog's
# ids are completed (workers.cli.choices).
ENUMS = {Kind.CYCLE: BillingCycle, Kind.RESOLUTION: Resolution, Kind.SWITCH: Switch}
COMPLETIONS = {Kind.PLAN: complete_plan, Kind.UNIT_GB: complete_unit, Kind.ADDON: complete_addon}


def operate(org_id: str, kind: str, request: Any) -> None:
    from workers.runtime.operations import OperationRefused, send_operation
    from workers.runtime.temporal import connect

    async def run():
        client = await connect(settings())
        return await send_operation(client, org_id, request)
    try:
        outcome = asyncio.run(run())
    except OperationRefused as err:
        line, code = refusal_exit(err)
        fail(line if code == ExitCode.UNAVAILABLE else f"{kind} refused: {line}", code)
    if outcome.payment == ChargeOutcome.DECLINED:  # the change (or the card) is kept, the money is not there
        fail(f"{kind} declined: {outcome.message} (status {outcome.status})")
    console.print(f"[green]{kind}:[/] {escape(outcome.message)} (status {outcome.status})", highlight=False)


def _annotation(hint: Any) -> Any:
    """Typer reads Optional[...], not PEP 604 unions."""
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    return Optional[args[0]] if type(None) in typing.get_args(hint) else hint


def _parameters(operation: Operation) -> list[inspect.Parameter]:
    params = [inspect.Parameter("org_id", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=str,
                                default=typer.Argument(..., help="Org id"))]
    for item in fields(operation.inputs):
        meta = item.metadata
        if item.name in ("requested_by", "reason") and not operation.audited:
            continue
        if meta.get("kind") == Kind.CARD:
            params.append(_card_refusal(item.name))
            continue
        required = item.default is MISSING or (item.name == "requested_by" and operation.actor_required) \
            or (item.name == "reason" and operation.reason_required)
        default = ... if required else item.default
        annotation = _annotation(item.type)
        choices = ENUMS.get(meta.get("kind"))
        if choices is not None:
            annotation = Optional[choices] if type(None) in typing.get_args(annotation) else choices
        extra = {"autocompletion": COMPLETIONS[meta["kind"]]} if meta.get("kind") in COMPLETIONS else {}
        if meta.get("positional"):
            spec = typer.Argument(default, help=meta.get("help"), show_default=False, **extra)
        else:
            flag = meta.get("flag") or f"--{item.name.replace('_', '-')}"
            spec = typer.Option(default, flag, help=meta.get("help"), show_default=not required, **extra)
        params.append(inspect.Parameter(item.name, inspect.Parameter.KEYWORD_ONLY, annotation=annotation,
                                        default=spec))
    return params


# ---- the card number: a hidden prompt or standard input, never argv (shell history, ps) --------------

def _card_refusal(name: str) -> inspect.Parameter:
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=Optional[str],
                             default=typer.Option(None, f"--{name}", hidden=True))


def card_number_given(prompt: str = "Card number", ask: bool = True) -> str | None:
    """A card number from a hidden prompt in a terminal (when `ask`), else the first line of
    standard input; None when none is given. Never an argument: it would stay in the shell
    history and show in `ps`."""
    if sys.stdin is None:
        return None
    if sys.stdin.isatty():
        return (typer.prompt(prompt, hide_input=True, err=True, default="", show_default=False).strip() or None
                if ask else None)
    return sys.stdin.readline().strip() or None


def read_card_number() -> str:
    number = card_number_given()
    if number is None:
        fail("no card number on standard input: pipe it (echo NUMBER | billing org update-card ORG), or run "
             "the command in a terminal to be asked for it", ExitCode.USAGE)
    return number


def read_back_payment_method(payment_method: str) -> dict[str, str]:
    """The brand and last four of a Stripe PaymentMethod, as Stripe describes it (never a number)."""
    from activities.gateways import GatewayUnavailable
    from workers.runtime.worker import gateway_from
    configured = settings()
    if configured.gateway != "stripe":
        fail("--payment-method: a Stripe PaymentMethod needs BILLING_GATEWAY=stripe (and STRIPE_API_KEY); "
             "the sandbox takes a card number on standard input", ExitCode.USAGE)
    try:
        card = gateway_from(configured, db=None).describe(payment_method)   # a StripeGateway here
    except DomainError as err:
        fail(err.message, ExitCode.USAGE)
    except GatewayUnavailable as err:
        fail(f"Stripe unreachable: {err} (check STRIPE_API_BASE and the network)", ExitCode.UNAVAILABLE)
    except ApplicationError as err:   # Stripe refused: no such PaymentMethod, a wrong key
        fail(f"--payment-method {payment_method}: {err.message}", ExitCode.REFUSED)
    return {"brand": card.brand, "last4": card.last4}


def _card_fields(operation: Operation) -> list[str]:
    return [item.name for item in fields(operation.inputs) if item.metadata.get("kind") == Kind.CARD]


def check_catalog(request: Any) -> None:
    """What the request names in the catalog, checked before sending with the rules' own check
    (domain.rules.check_catalog_names): an unknown plan, storage unit or add-on, a tier out of its steps."""
    from domain.rules import check_catalog_names
    from domain.subscription import catalog_facts
    catalog = configured_catalog()
    currency = next(iter(next(iter(catalog.plans.values())).prices))  # names do not depend on the currency
    check_catalog_names(catalog_facts(catalog, currency), request)


def _operation_command(operation: Operation) -> Callable[..., None]:
    """A command for one operation of the registry: its fields become the command's arguments."""
    card_fields = _card_fields(operation)

    def command(org_id: str, **values: Any) -> None:
        if values.get("payment_method"):   # no number: the gateway's card form took it
            values.update(read_back_payment_method(values["payment_method"]), card="")
            card_fields_to_read = []
        else:
            card_fields_to_read = card_fields
            if card_fields and settings().gateway != "sandbox":
                fail(f"a card number goes to the sandbox gateway only; with BILLING_GATEWAY={settings().gateway} "
                     f"pass --payment-method pm_... from the console's card form", ExitCode.USAGE)
        for name in card_fields_to_read:
            if values[name] is not None:
                fail(f"--{name}: a card number is not taken on the command line (it would stay in the shell "
                     f"history); pipe it: echo NUMBER | billing {' '.join(operation.cli)} {org_id}", ExitCode.USAGE)
            values[name] = read_card_number()
        values = {key: value.value if isinstance(value, Enum) else value for key, value in values.items()}
        try:
            request = operation.request_from_input(values)
            operation.check_fields(request, settings().policy.limits)  # bad input: nothing is sent
            check_catalog(request)   # a plan, unit, add-on or tier the catalog has not: nothing is sent
        except DomainError as err:
            fail(f"{operation.name} refused: {err.message}", checked_exit(err))  # 1: a card the gateway rejects
        operate(org_id, operation.name, request)
    command.__signature__ = inspect.Signature(_parameters(operation))
    command.__doc__ = operation.description + (
        "\n\nThe card number is asked for (hidden) in a terminal, or read from standard input: "
        f"echo NUMBER | billing {' '.join(operation.cli)} ORG" if card_fields else "")
    command.__name__ = operation.name
    return command


_NEGATIVE_NUMBER = re.compile(r"^-(\d|\.\d)")


class _NegativeNumbersAreValues(TyperCommand):
    """`billing org add-licences acme -5` reads -5 as the count (refused by its bound, exit 2),
    not as an unknown option; an unknown option (`--bogus`) is still reported as one."""

    def parse_args(self, ctx, args):  # noqa: ANN001
        from typer._click.exceptions import NoSuchOption
        known = {name for param in self.get_params(ctx) for name in (*param.opts, *param.secondary_opts)}
        for arg in args:
            if arg == "--":
                break
            name = arg.split("=", 1)[0]
            if arg.startswith("-") and len(arg) > 1 and not _NEGATIVE_NUMBER.match(arg) and name not in known:
                raise NoSuchOption(name, ctx=ctx)
        return super().parse_args(ctx, args)


NUMBERS_AS_VALUES = {"cls": _NegativeNumbersAreValues, "context_settings": {"ignore_unknown_options": True}}


def _register() -> None:
    for operation in OPERATIONS.values():
        if not operation.generated:
            continue
        noun, name = operation.cli
        command = _operation_command(operation)
        group(noun).command(name, **NUMBERS_AS_VALUES)(command)
        if operation.name in FORMER_TOP_LEVEL:
            app.command(name, hidden=True, **NUMBERS_AS_VALUES)(command)


_register()


@group("usage").command("import")
def usage_import(org_id: str = typer.Argument(..., help="Org id"),
                 file: Path = typer.Argument(..., help="CSV file: email,storage_gb (a header line is optional)")) -> None:
    """Import usage from a CSV file, all or nothing (a bad row refuses the whole file).

    The whole file is checked first (a bad row refuses it, naming the line), then sent as one
    Update (a few for a very large file)."""
    import re
    from workers.runtime.operations import OperationRefused, send_operation
    from workers.runtime.temporal import connect
    from workers.cli.usage_import import UsageImportError, decode, parse_usage_csv
    from workers.runtime.files import FileTooLarge, read_bounded
    config = settings()
    try:
        usage = parse_usage_csv(decode(read_bounded(file, config.max_input_file_mb)), config.policy.limits)
    except FileTooLarge as err:
        fail(str(err), ExitCode.USAGE)
    except UsageImportError as err:
        fail(f"{file}: {err}", ExitCode.USAGE)
    except OSError as err:
        fail(f"cannot read {file}: {err.strerror or err}", ExitCode.USAGE)
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
                    outcomes.append(await send_operation(client, org_id, rq.ImportUsageRequest(rows)))
                except OperationRefused as err:
                    done = f" ({first:,} rows before line {usage.lines[first]} were applied)" if first else ""
                    line, code = refusal_exit(err)
                    fail(f"{line}{done}" if code == ExitCode.UNAVAILABLE else
                         f"usage import refused: {at_line(line, first)}{done}", code)
                progress.advance(task, len(rows))
        return outcomes
    outcomes = asyncio.run(run())
    console.print(f"[green]import_usage:[/] usage of {len(usage.rows):,} user(s) imported into {org_id} "
                  f"in {len(outcomes)} update(s) (status {outcomes[-1].status})", highlight=False)


def _all_users_known(org_id: str, usage) -> None:
    """The decision's own check of a usage file's users (db.snapshots.StoredOrg), on the whole file."""
    from db.snapshots import StoredOrg
    from domain.errors import DomainError
    from domain.users import check_member
    emails = [email for email, _ in usage.rows]
    with database().transaction() as session:
        users = StoredOrg(session, org_id)
        missing = users.unknown(emails)
        if missing:
            try:
                check_member(users, missing[0], f"line {usage.lines[emails.index(missing[0])]}: user", org_id)
            except DomainError as err:
                fail(f"usage import refused: {err.message}; nothing was imported")
