"""Commands for operators and billing staff that read many orgs or set things up: the schema,
the cluster's search attributes, dunning and escalation lists, reconciliation, the simulator."""

import asyncio
from datetime import datetime
from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape
from rich.table import Table

from workers.cli.common import JSON_OPTION_HELP, app, console, database, group, print_json, settings


@group("db").command("upgrade")
def db_upgrade() -> None:
    """Apply the Alembic migrations to BILLING_DATABASE_URL."""
    from db.migrate import upgrade
    upgrade(settings().database_url)
    console.print("database schema is up to date")


@group("temporal").command("register-search-attributes")
def register_search_attributes() -> None:
    """Register the custom search attributes on the configured namespace (once per cluster)."""
    async def run() -> None:
        from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
        from workers.runtime.search_attributes import api_types
        from workers.runtime.temporal import connect
        config = settings()
        client = await connect(config)
        await client.operator_service.add_search_attributes(AddSearchAttributesRequest(
            namespace=config.temporal_namespace, search_attributes=api_types()))
    asyncio.run(run())
    console.print("search attributes registered")


def _at(moment: datetime | None) -> str:
    return f"{moment:%Y-%m-%d %H:%M}" if moment else "-"


def _in_dunning(statuses) -> list[dict]:  # noqa: ANN001
    """Orgs in the given statuses with an open dunning invoice, the next retry first."""
    from dataclasses import asdict
    from db.queries import orgs_in_dunning
    with database().transaction() as session:
        return [asdict(row) for row in orgs_in_dunning(session, statuses)]


def _print_orgs(title: str, columns: dict[str, str], rows: list[dict], as_json: bool) -> None:
    """`columns`: a heading per key of the rows."""
    if as_json:
        print_json({"orgs": rows})
        return
    table = Table(title=title)
    for heading in columns.values():
        table.add_column(heading)
    for row in rows:
        table.add_row(*(_at(row[key]) if isinstance(row[key], datetime) or row[key] is None else str(row[key])
                        for key in columns))
    console.print(table)


@group("dunning").command("list")
def dunning_list(as_json: bool = typer.Option(False, "--json", help=JSON_OPTION_HELP)) -> None:
    """Orgs in dunning, with the attempt number and the next retry."""
    from domain.states import OrgStatus
    _print_orgs("orgs in dunning", {"org_id": "org", "status": "status", "invoice": "invoice", "attempts": "attempts",
                                    "next_retry_at": "next retry", "first_response_due": "first response due"},
                _in_dunning([OrgStatus.PAST_DUE, OrgStatus.ESCALATED]), as_json)


@group("escalation").command("list")
def escalation_list(as_json: bool = typer.Option(False, "--json", help=JSON_OPTION_HELP)) -> None:
    """Escalated large accounts waiting for billing staff, the first response due first."""
    from domain.states import OrgStatus
    rows = sorted(_in_dunning([OrgStatus.ESCALATED]),
                  key=lambda row: (row["first_response_due"] is None, row["first_response_due"] or datetime.min))
    _print_orgs("escalated orgs", {"org_id": "org", "invoice": "invoice", "attempts": "attempts",
                                   "escalated_at": "escalated", "first_response_due": "first response due",
                                   "determination_due": "determination due"}, rows, as_json)


@app.command("reconcile")
def reconcile(schedule: bool = typer.Option(False, help="Create the nightly Temporal Schedule instead"),
              as_json: bool = typer.Option(False, "--json", help="Print the report as JSON")) -> None:
    """Start a workflow for every org that has none; report disagreements."""
    from workers.runtime.schedules import ensure_reconcile_schedule, run_reconcile_now
    config = settings()
    if schedule:
        asyncio.run(ensure_reconcile_schedule(config))
        console.print("nightly reconciliation schedule is in place")
        return
    report = asyncio.run(run_reconcile_now(config))
    if as_json:
        print_json(report)
        return
    console.print(f"checked {report.checked} org(s); started {report.started or 'none'}; stuck: "
                  f"{report.activity_failing} with a failing activity, {report.step_overdue} with a step overdue")
    for line in report.disagreements:
        console.print(f"[yellow]disagreement:[/] {escape(line)}")


@app.command("simulate")
def simulate(scenario: Optional[Path] = typer.Argument(None, help="Scenario YAML file"),
             as_json: bool = typer.Option(False, "--json", help="Print the timeline as JSON"),
             example: bool = typer.Option(False, "--example", help="Print a commented example scenario"),
             pdf: bool = typer.Option(False, "--pdf", help="Render the invoice PDFs the receipts carry, as in "
                                                          "production (a dry run renders no document by default)")
             ) -> None:
    """Dry-run one org through its life on the time-skipping test server (see docs/SIMULATE.md)."""
    from workers.simulate.command import run_simulate_command
    raise typer.Exit(run_simulate_command(scenario, as_json, example, pdf))
