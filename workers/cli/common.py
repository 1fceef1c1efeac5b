"""What every `billing` command shares: the app and its noun groups, the exit codes, one-line
errors, settings, and JSON output."""

import json
import sys
from dataclasses import fields, is_dataclass
from datetime import date, datetime
from enum import Enum, IntEnum
from typing import Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from typer.core import TyperGroup


class ExitCode(IntEnum):
    """The same everywhere (`billing --help` lists them)."""
    DONE = 0
    REFUSED = 1       # the request was refused (a rule, an unknown org) or the card declined
    USAGE = 2         # bad usage: a wrong option or value; nothing was sent or written
    UNAVAILABLE = 3   # Temporal or the database could not be reached


EXIT_CODES_HELP = ("Exit codes: 0 done; 1 refused or declined (a rule said no, an unknown org or invoice, a "
                   "declined card); 2 bad usage (a wrong option or value: nothing was sent); 3 Temporal or the "
                   "database unavailable (the message names the setting to check).")

app = typer.Typer(help="Renewal and dunning pipeline for SaaS organisations.", epilog=EXIT_CODES_HELP,
                  no_args_is_help=True, pretty_exceptions_enable=False)

# The noun groups; an operation's command goes in the one its `cli` names (domain.operations).
GROUP_HELP = {
    "org": "Organisations: create, inspect, list, and change their subscription.",
    "invoice": "Invoices and statements: the payment history and the documents.",
    "dunning": "Orgs in dunning, and charging their open invoice again.",
    "escalation": "Large-account escalations.",
    "storage": "Storage units.",
    "usage": "Mailbox usage reports.",
    "addon": "Flat add-ons (premium support).",
    "tier": "The subscriber tier and marketing contacts.",
    "webhook": "The mail platform's entitlement webhooks: each endpoint's state, resending an org's.",
    "db": "Database schema.",
    "temporal": "Temporal cluster set-up.",
}
# `billing invoice NUMBER ...` (the former command) is `billing invoice render NUMBER ...`.
DEFAULT_COMMAND = {"invoice": "render"}
GROUPS: dict[str, typer.Typer] = {}


class _WithDefaultCommand(TyperGroup):
    """A group whose first argument, when it names none of its commands, goes to its default one."""

    def parse_args(self, ctx, args):  # noqa: ANN001
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            args = [DEFAULT_COMMAND[self.name], *args]
        return super().parse_args(ctx, args)


def group(name: str) -> typer.Typer:
    if name not in GROUPS:
        GROUPS[name] = typer.Typer(help=GROUP_HELP.get(name), epilog=EXIT_CODES_HELP, no_args_is_help=True,
                                   cls=_WithDefaultCommand if name in DEFAULT_COMMAND else TyperGroup)
        app.add_typer(GROUPS[name], name=name)
    return GROUPS[name]


for _name in GROUP_HELP:  # in this order in `billing --help`
    group(_name)

# Piped output (scripts, grep) gets wide tables instead of rows wrapped at 80 columns.
console = Console(width=None if sys.stdout.isatty() else 200)
errors = Console(stderr=True, width=None if sys.stderr.isatty() else 200)


def error_line(message: str) -> None:
    """`error: ...` on standard error, one line however long (the message is not markup)."""
    errors.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)


def fail(message: str, code: int = ExitCode.REFUSED) -> NoReturn:
    error_line(message)
    raise typer.Exit(int(code))


IN_THE_DATABASE = " in the database (BILLING_DATABASE_URL)"   # an unknown org: the setting to check


def unknown_org(org_id: str) -> NoReturn:
    """An org the database does not have: exit 1, its id cut to a line, the setting to check."""
    from domain.limits import shown
    fail(f"unknown org {shown(org_id)}{IN_THE_DATABASE}")


def checked_exit(err) -> int:  # noqa: ANN001  (domain.errors.DomainError)
    """A check run before anything is sent or written: a bad value is bad usage (2), any other
    refusal 1 (domain.errors.BAD_VALUE_TYPES is the classification)."""
    from domain.errors import is_bad_value
    return ExitCode.USAGE if is_bad_value(err) else ExitCode.REFUSED


def refusal_exit(err) -> tuple[str, int]:  # noqa: ANN001  (workers.runtime.operations.OperationRefused)
    """The line and exit code for a refusal of a request the workflow received: 3 when the
    change could not be decided (the worker's database out of reach: type `unavailable`), else 1
    (a rule on the org's state said no; a bad value is caught before anything is sent)."""
    if err.type == "unavailable":
        return (f"{err.message}; the worker could not use its database: check the worker's BILLING_DATABASE_URL "
                "(the database is unavailable)", ExitCode.UNAVAILABLE)
    return err.message, ExitCode.REFUSED


def note(message: str) -> None:
    """A remark on standard error (standard output may be carrying JSON or a document)."""
    errors.print(message, highlight=False, soft_wrap=True, markup=False)


def settings():
    from workers.runtime.config import Settings
    return Settings()


def configured_catalog():
    """The configured catalog: a missing or broken BILLING_CATALOG_PATH is a setting out of range
    (one line naming it, exit 2), never a refusal by a rule."""
    from domain.catalog import load_catalog
    from domain.errors import CatalogError
    try:
        return load_catalog(settings().catalog_path)
    except CatalogError as err:
        fail(f"BILLING_CATALOG_PATH: {err.message}", ExitCode.USAGE)


def database(url: str | None = None):
    """The configured database, which must exist: a command never creates one (only `billing db
    upgrade` does), so a missing SQLite file is exit 3 with nothing created."""
    from db.session import Database, sqlite_file
    url = url or settings().database_url
    path = sqlite_file(url)
    if path is not None and not path.is_file():
        fail(f"no database at {path} (BILLING_DATABASE_URL); create it with billing db upgrade", ExitCode.UNAVAILABLE)
    return Database(url, create_folder=False)


def to_jsonable(value: Any) -> Any:
    """Stable JSON: dataclass fields by name, dates in ISO 8601, enums as their value; amounts
    stay integers in minor units next to their currency."""
    if is_dataclass(value):
        return {f.name: to_jsonable(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    return value


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(to_jsonable(data), indent=2, ensure_ascii=False) + "\n")
    sys.stdout.flush()


JSON_OPTION_HELP = "Print JSON (stable keys; amounts in minor units with their currency)"
