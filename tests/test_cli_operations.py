"""The `billing` CLI prints the workflow's answer and exits non-zero on a refusal."""

import asyncio
import os
import sys
from datetime import timedelta

from typer.testing import CliRunner

from workers.cli import app
from workers.cli.usage_import import UsageImportError, parse_usage_csv

STAFF = "rina@billing.test"


async def billing(stack, *args: str) -> tuple[int, str]:
    env = {**os.environ, "BILLING_TEMPORAL_ADDRESS": stack.client.service_client.config.target_host,
           "BILLING_DATABASE_URL": stack.db.url, "BILLING_BILLING_STAFF": STAFF, "COLUMNS": "200"}
    process = await asyncio.create_subprocess_exec(sys.executable, "-m", "workers.cli", *args, env=env,
                                                   stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out, _ = await process.communicate()
    return process.returncode, " ".join(out.decode().split())


async def test_downgrade_cancel_and_history_through_the_cli(stack):
    async with stack.worker():
        org_id = await stack.create_org(plan="professional", cycle="monthly", card="4242424242424242")
        renewal = (await stack.state(org_id)).snapshot.renews_at
        await stack.advance_to(renewal - timedelta(days=10))
        code, out = await billing(stack, "org", "downgrade", org_id, "--to", "standard", "--by", STAFF, "--reason", "cost")
        assert code == 1 and "only 15 to 30 days before the renewal date" in out
        code, out = await billing(stack, "org", "downgrade", org_id, "--to", "platinum", "--by", STAFF, "--reason", "x")
        assert code == 2 and "unknown plan 'platinum'" in out   # a value the catalog has not: bad usage
        code, out = await billing(stack, "org", "cancel", org_id, "--by", f"admin@{org_id}.test")
        assert code == 0 and "paid service continues until" in out
        code, out = await billing(stack, "org", "cancel", org_id, "--by", f"admin@{org_id}.test")
        assert code == 1 and "already cancelled" in out
        code, out = await billing(stack, "org", "undo-cancel", org_id, "--by", f"admin@{org_id}.test")
        assert code == 0
        code, out = await billing(stack, "dunning", "retry-payment", org_id, "--by", "someone@x.test", "--reason", "call")
        assert code == 1 and "only billing staff may retry a payment" in out
        code, out = await billing(stack, "org", "history", org_id)
        assert code == 0 and "cancel" in out and "undo_cancel" in out and f"admin@{org_id}.test" in out
        code, out = await billing(stack, "invoice", "list", org_id)
        assert code == 0
        code, out = await billing(stack, "org", "show", org_id)
        assert code == 0 and "professional" in out and "active" in out and "renewal charge" in out


def test_csv_with_a_malformed_row_is_refused_whole_with_the_line_number(tmp_path, monkeypatch, sqlite_url):
    text = "email,storage_gb\na@x.test,1.5\nb@x.test,lots\nc@x.test,2\n"
    try:
        parse_usage_csv(text)
        raise AssertionError("accepted a malformed file")
    except UsageImportError as err:
        assert "line 3" in str(err) and "nothing was imported" in str(err)
    assert parse_usage_csv("email,storage_gb\na@x.test,1.5\nB@X.test,0\n").rows == [("a@x.test", 1.5), ("b@x.test", 0.0)]
    path = tmp_path / "usage.csv"
    path.write_text(text)
    monkeypatch.setenv("BILLING_DATABASE_URL", sqlite_url)
    monkeypatch.setenv("BILLING_TEMPORAL_ADDRESS", "127.0.0.1:1")  # never reached: refused before sending
    result = CliRunner().invoke(app, ["usage", "import", "acme", str(path)])
    assert result.exit_code == 2 and "line 3" in result.output


async def test_switch_to_monthly_through_the_cli(stack):
    async with stack.worker():
        monthly = await stack.create_org(plan="standard", cycle="monthly", card="4242424242424242")
        yearly = await stack.create_org(plan="standard", cycle="yearly", card="4242424242424242")
        renewal = (await stack.state(yearly)).snapshot.renews_at
        code, out = await billing(stack, "org", "switch-to-monthly", monthly)
        assert (code, out) == (1, "error: switch_to_monthly refused: the org is already billed monthly; only a yearly "
                                  "org can switch to monthly")
        code, out = await billing(stack, "org", "switch-to-monthly", yearly)
        assert code == 0 and f"switch to monthly billing scheduled for {renewal:%Y-%m-%d}" in out
        code, out = await billing(stack, "org", "switch-to-monthly", yearly)
        assert (code, out) == (1, "error: switch_to_monthly refused: a switch to monthly is already scheduled for "
                                  f"{renewal:%Y-%m-%d}")
        code, out = await billing(stack, "org", "show", yearly)
        assert code == 0 and "switch to monthly billing" in out and "billing switches to monthly" in out
        code, out = await billing(stack, "org", "cancel-switch-to-monthly", yearly)
        assert code == 0 and "withdrawn: the org stays yearly" in out
        code, out = await billing(stack, "org", "cancel-switch-to-monthly", yearly)
        assert (code, out) == (1, "error: cancel_switch_to_monthly refused: no switch to monthly is scheduled")
        state = await stack.state(yearly)
    assert (state.snapshot.cycle, state.snapshot.scheduled.cycle) == ("yearly", None)
