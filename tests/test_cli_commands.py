"""The `billing` command tree and its exit codes without a Temporal server: every operation of
the registry has its command, former names still work, bad usage is one line and exit 2,
Temporal out of reach is exit 3, and `org list` answers from the database when it must."""

import json
import os
import shutil
import subprocess
import time
from datetime import datetime, timedelta, timezone
from importlib.metadata import version

import pytest
from typer.testing import CliRunner

from services.orgs import create_org
from domain.onboarding import NewOrg, paid_for_one_cycle, validate_new_org
from domain.operations import OPERATIONS
from db.models import Organisation
from domain.policy import Policy
from tests.support.cli import BILLING, billing_now
from workers.cli import app
from workers.cli.changes import FORMER_TOP_LEVEL
from workers.cli.common import GROUP_HELP

NOWHERE = "127.0.0.1:1"  # a closed port: Temporal unreachable


def help_of(*argv: str):
    return CliRunner().invoke(app, [*argv, "--help"], env={"COLUMNS": "200"})


@pytest.mark.parametrize("name", [name for name, op in OPERATIONS.items() if op.generated])
def test_every_operation_of_the_registry_has_a_command_under_a_noun(name):
    operation = OPERATIONS[name]
    noun, verb = operation.cli
    assert noun in GROUP_HELP, f"{name}: {noun!r} is not one of the noun groups"
    shown = help_of(noun, verb)
    assert shown.exit_code == 0, shown.output
    assert " ".join(operation.description.split()[:4]) in " ".join(shown.output.split())


def test_the_operations_the_issue_found_missing_have_commands():
    for argv in (["addon", "buy"], ["addon", "remove"], ["tier", "change"], ["tier", "contacts"]):
        assert help_of(*argv).exit_code == 0, argv


def test_former_top_level_names_still_work_but_are_not_listed():
    listed = help_of().output
    for name in FORMER_TOP_LEVEL:
        verb = OPERATIONS[name].cli[1]
        assert help_of(verb).exit_code == 0, verb
        assert f"│ {verb} " not in listed, f"{verb} is listed at the top level"
    for former in ("invoices", "statement"):
        assert help_of(former).exit_code == 0 and f"│ {former} " not in listed


def test_version_and_the_exit_codes_in_the_help():
    run = billing_now("--version")
    assert run.code == 0 and run.out.strip() == f"billing {version('billing-pipeline')}"
    run = billing_now("--help")
    assert run.code == 0
    text = " ".join(run.out.split())
    for meaning in ("0 done", "1 refused or declined", "2 bad usage", "3 Temporal or the database unavailable"):
        assert meaning in text


@pytest.mark.parametrize("argv, message", [
    (["org", "lst"], "error: No such command 'lst'. Did you mean 'list'? (see `billing org --help`)"),
    (["org", "list", "--status", "overdue"], "error: Invalid value for '--status': 'overdue' is not one of"),
    (["org", "upgrade", "acme", "--plan", "standard", "--cycle", "weekly"],
     "error: Invalid value for '--cycle': 'weekly' is not one of 'monthly', 'yearly'"),
    (["escalation", "resolve", "acme", "--action", "forgive", "--by", "x@y.test", "--reason", "r"],
     "error: Invalid value for '--action': 'forgive' is not one of 'extend', 'downgrade', 'retry'"),
    (["org", "list", "--plan", "gold"], "error: --plan: unknown plan 'gold'; known plans: free,"),
    (["org", "list", "--next-action-before", "soon"], "error: --next-action-before: 'soon' is not a date"),
    (["org", "show"], "error: Missing argument"),
    (["org", "update-card", "acme", "--card", "4242424242424242"],
     "error: --card: a card number is not taken on the command line (it would stay in the shell history); "
     "pipe it: echo NUMBER | billing org update-card acme"),
])
def test_bad_usage_is_one_line_and_exit_2(sqlite_url, argv, message):
    run = billing_now(*argv, BILLING_DATABASE_URL=sqlite_url, BILLING_TEMPORAL_ADDRESS=NOWHERE)
    assert run.code == 2 and run.out == "" and len(run.err_lines) == 1, run
    assert run.err_lines[0].startswith(message), run.err_lines


@pytest.mark.parametrize("stdin, message", [
    ("4242424242424241\n", "error: update_card refused: card: number ending 4241 fails the checksum"),
    ("42\n", "error: update_card refused: card: a card number is 12 to 19 digits"),
    ("", "error: no card number on standard input: pipe it (echo NUMBER | billing org update-card ORG)"),
])
def test_a_malformed_card_on_stdin_is_refused_before_anything_is_sent(sqlite_url, stdin, message):
    # Temporal is out of reach: a card that got as far as sending would exit 3, not 2.
    run = billing_now("org", "update-card", "acme", stdin=stdin, BILLING_DATABASE_URL=sqlite_url,
                      BILLING_TEMPORAL_ADDRESS=NOWHERE)
    assert run.code == 2 and len(run.err_lines) == 1 and run.err_lines[0].startswith(message), run
    assert "4242424242424241" not in run.err    # the number itself is never echoed


def test_a_change_with_temporal_down_is_exit_3_naming_the_setting(sqlite_url):
    run = billing_now("org", "upgrade", "acme", "--plan", "standard", BILLING_DATABASE_URL=sqlite_url,
                      BILLING_TEMPORAL_ADDRESS=NOWHERE)
    assert run.code == 3 and run.err_lines == [
        "error: Temporal unreachable at 127.0.0.1:1 (Connection refused); check BILLING_TEMPORAL_ADDRESS"], run


def test_org_create_with_temporal_down_saves_nothing_and_is_exit_3(sqlite_url, sqlite_db):
    run = billing_now("org", "create", "acme", "--name", "Acme", "--admin", "admin@acme.test",
                      BILLING_DATABASE_URL=sqlite_url, BILLING_TEMPORAL_ADDRESS=NOWHERE)
    assert run.code == 3 and run.out == "" and run.err_lines == [
        "error: Temporal unreachable at 127.0.0.1:1 (Connection refused); check BILLING_TEMPORAL_ADDRESS"], run
    with sqlite_db.transaction() as session:
        assert session.get(Organisation, "acme") is None   # nothing saved


def test_an_unknown_org_is_exit_1_in_one_line(sqlite_url):
    for argv in (["org", "show", "nobody"], ["org", "history", "nobody"], ["invoice", "list", "nobody"]):
        run = billing_now(*argv, BILLING_DATABASE_URL=sqlite_url, BILLING_TEMPORAL_ADDRESS=NOWHERE)
        assert run.code == 1 and len(run.err_lines) == 1, run
        assert run.err_lines[0].startswith("error: unknown org 'nobody'") and "BILLING_DATABASE_URL" in run.err


def test_an_unknown_org_with_a_10000_character_id_is_named_cut(sqlite_url):
    """Issue 22: the id was echoed whole, 10,000 characters on one line."""
    long_id = "x" * 10_000
    for argv in (["org", "show", long_id], ["org", "history", long_id], ["invoice", "list", long_id]):
        run = billing_now(*argv, BILLING_DATABASE_URL=sqlite_url, BILLING_TEMPORAL_ADDRESS=NOWHERE)
        assert run.code == 1 and len(run.err_lines) == 1, run
        assert run.err_lines[0].startswith("error: unknown org 'xxxxxxxxxxxxxxxxxxxxxxxxxxx... (10000 characters)")
        assert len(run.err) < 300, run


def test_both_temporal_and_the_database_down_is_exit_3(tmp_path):
    run = billing_now("org", "list", BILLING_TEMPORAL_ADDRESS=NOWHERE,
                      BILLING_DATABASE_URL="postgresql+psycopg2://postgres@127.0.0.1:1/none")
    assert run.code == 3 and run.out == ""
    assert run.err_lines[-1].startswith("error: database unreachable (") and \
        run.err_lines[-1].endswith("check BILLING_DATABASE_URL"), run
    (tmp_path / "empty.db").touch()
    run = billing_now("org", "list", BILLING_TEMPORAL_ADDRESS=NOWHERE,
                      BILLING_DATABASE_URL=f"sqlite:///{tmp_path / 'empty.db'}")
    assert run.code == 3 and "run `billing db upgrade`" in run.err_lines[-1], run


def _org(db, catalog, org_id: str, start: datetime, **fields) -> None:
    new = validate_new_org(NewOrg(id=org_id, name=f"Org {org_id}", admin_email=f"admin@{org_id}.test", users=[],
                                  **fields), catalog)
    with db.transaction() as session:
        create_org(session, paid_for_one_cycle(new, start, "tests"), catalog, Policy(), start)


def test_org_list_falls_back_to_the_database_and_applies_every_filter(sqlite_url, sqlite_db, catalog):
    now = datetime.now(timezone.utc)
    _org(sqlite_db, catalog, "trial-a", now - timedelta(days=1))
    _org(sqlite_db, catalog, "free-b", now, plan="free")
    _org(sqlite_db, catalog, "paid-c", now - timedelta(days=2), plan="standard", cycle="monthly")
    _org(sqlite_db, catalog, "paid-d", now - timedelta(days=2), plan="standard", cycle="yearly")

    def listed(*filters: str) -> list[str]:
        run = billing_now("org", "list", "--json", *filters, BILLING_DATABASE_URL=sqlite_url,
                          BILLING_TEMPORAL_ADDRESS=NOWHERE)
        assert run.code == 0, run
        answer = json.loads(run.out)
        assert answer["source"] == "database" and "Temporal unreachable" in answer["fallback_reason"]
        assert run.err_lines == [f"answered by the database: {answer['fallback_reason']}"]
        return [org["org_id"] for org in answer["orgs"]]

    assert listed() == ["free-b", "paid-c", "paid-d", "trial-a"]
    assert listed("--status", "trialing") == ["trial-a"]
    assert listed("--status", "active", "--status", "free") == ["free-b", "paid-c", "paid-d"]
    assert listed("--plan", "standard", "--cycle", "yearly") == ["paid-d"]
    assert listed("--cycle", "none") == ["free-b", "trial-a"]
    assert listed("--large") == [] and listed("--not-large") == ["free-b", "paid-c", "paid-d", "trial-a"]
    # The trial (15 days) ends in 14 days, with its 3-day reminder due in 11; the monthly renewal
    # in about 28 days; the yearly in about a year; the free plan has no timed step.
    soon = (now + timedelta(days=12)).strftime("%Y-%m-%d")
    assert listed("--next-action-before", soon) == ["trial-a"]
    assert listed("--next-action-before", (now + timedelta(days=40)).strftime("%Y-%m-%d")) == \
        ["paid-c", "trial-a"]

    run = billing_now("org", "list", "--status", "active", BILLING_DATABASE_URL=sqlite_url,
                      BILLING_TEMPORAL_ADDRESS=NOWHERE)
    rows = [line for line in run.out.splitlines() if "paid-" in line]
    assert run.code == 0 and len(rows) == 2 and all("standard" in row and "active" in row for row in rows)
    assert "monthly" in rows[0] and "yearly" in rows[1]


def test_org_list_shows_the_scheduled_change(sqlite_url, sqlite_db, catalog):
    from db.models import Subscription
    now = datetime.now(timezone.utc)
    _org(sqlite_db, catalog, "paid-c", now - timedelta(days=2), plan="standard", cycle="monthly")
    _org(sqlite_db, catalog, "paid-d", now - timedelta(days=2), plan="standard", cycle="yearly")
    with sqlite_db.transaction() as session:
        subscription = session.get(Subscription, "paid-c")
        subscription.cancel_at_period_end = True
        renews = subscription.renews_at
    env = {"BILLING_DATABASE_URL": sqlite_url, "BILLING_TEMPORAL_ADDRESS": NOWHERE}
    run = billing_now("org", "list", "--json", **env)
    assert run.code == 0, run
    rows = {org["org_id"]: org["scheduled_change"] for org in json.loads(run.out)["orgs"]}
    assert rows == {"paid-c": f"cancel on {renews:%Y-%m-%d}", "paid-d": None}, rows
    run = billing_now("org", "list", **env)
    assert "scheduled change" in run.out and f"cancel on {renews:%Y-%m-%d}" in run.out, run


def test_read_commands_print_json_with_amounts_in_minor_units(sqlite_url, sqlite_db, catalog):
    _org(sqlite_db, catalog, "acme", datetime.now(timezone.utc))
    env = {"BILLING_DATABASE_URL": sqlite_url, "BILLING_TEMPORAL_ADDRESS": NOWHERE}
    history = billing_now("org", "history", "acme", "--json", **env)
    assert history.code == 0 and json.loads(history.out)["org_id"] == "acme", history
    assert [event["event"] for event in json.loads(history.out)["events"]][:1] == ["org_created"]
    for argv in (["dunning", "list", "--json"], ["escalation", "list", "--json"]):
        run = billing_now(*argv, **env)
        assert run.code == 0 and json.loads(run.out) == {"orgs": []}, run
    assert json.loads(billing_now("invoice", "list", "acme", "--json", **env).out) == []


def test_in_a_terminal_the_card_number_is_asked_for_without_echo(sqlite_url):
    """`script` gives the command a terminal; the number is typed once the prompt shows."""
    if shutil.which("script") is None:
        pytest.skip("util-linux `script` is needed for a terminal")
    process = subprocess.Popen(["script", "-qec", f"{BILLING} org update-card acme", "/dev/null"],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               env={**os.environ, "BILLING_DATABASE_URL": sqlite_url,
                                    "BILLING_TEMPORAL_ADDRESS": NOWHERE, "COLUMNS": "200"})
    os.set_blocking(process.stdout.fileno(), False)
    seen, deadline = b"", time.monotonic() + 60
    while b"Card number:" not in seen and time.monotonic() < deadline:
        seen += process.stdout.read() or b""
        time.sleep(0.05)
    assert b"Card number:" in seen, seen
    process.stdin.write(b"4242424242424242\n")
    process.stdin.close()
    os.set_blocking(process.stdout.fileno(), True)
    seen += process.stdout.read()
    # Read and accepted: it got as far as sending (Temporal is out of reach), never shown.
    assert process.wait(timeout=60) == 3 and b"Temporal unreachable" in seen, seen
    assert b"4242424242424242" not in seen


def test_shell_completion_offers_the_catalog_and_the_fixed_choices():
    def completed(words: str) -> list[str]:
        run = billing_now(_BILLING_COMPLETE="complete_bash", COMP_WORDS=words, COMP_CWORD=str(len(words.split())))
        assert run.code == 0, run
        return run.out.split()
    assert "professional" in completed("billing org upgrade acme --plan ")
    assert completed("billing org list --status ") == ["trialing", "active", "past_due", "cancelling", "free",
                                                       "escalated"]
    assert completed("billing storage buy acme --unit ") == ["5", "25", "50", "100", "200"]
    assert completed("billing addon buy acme ")[:1] == ["support_enhanced"]
    assert completed("billing escalation resolve acme --action ") == ["extend", "downgrade", "retry"]


def test_temporal_down_at_the_address_of_the_temporal_cli_settings_names_both(sqlite_url):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BILLING_TEMPORAL_", "TEMPORAL_"))}
    done = subprocess.run([BILLING, "org", "upgrade", "acme", "--plan", "standard"], capture_output=True, text=True,
                          timeout=120, env={**env, "BILLING_DATABASE_URL": sqlite_url, "TEMPORAL_ADDRESS": "127.0.0.1:2",
                                            "TEMPORAL_CONFIG_FILE": os.devnull, "COLUMNS": "200"})
    assert done.returncode == 3 and done.stdout == "" and done.stderr.splitlines() == [
        "error: Temporal unreachable at 127.0.0.1:2 (Connection refused); check BILLING_TEMPORAL_ADDRESS or "
        "TEMPORAL_ADDRESS (or the temporal CLI profile)"], done


def _commands(command, path=()):
    if hasattr(command, "commands"):
        for name, sub in command.commands.items():
            yield from _commands(sub, (*path, name))
    else:
        yield path, command


def test_every_command_s_summary_in_its_group_s_list_is_a_whole_sentence():
    """`billing org --help` listed `address` as "Set the billing address printed on the org's invoices
    and statements (from now on: an" (the first line of a summary wrapped over two)."""
    import typer.main
    cut = {" ".join(path): (command.help or "").strip().split("\n\n")[0]
           for path, command in _commands(typer.main.get_command(app)) if not command.hidden}
    assert {path: summary for path, summary in cut.items() if "\n" in summary} == {}
    shown = help_of("org")
    assert "Set the billing address printed on the org's invoices and statements." in shown.output


@pytest.mark.parametrize("argv", [
    ["org", "history", "nosuch"], ["org", "address", "nosuch", "1 Main St"], ["org", "tax", "nosuch", "--country", "ID"],
    ["invoice", "list", "nosuch"], ["invoice", "statement", "nosuch", "--from", "2026-01-01", "--to", "2026-02-01",
                                    "--json"], ["org", "entitlements", "nosuch"], ["webhook", "resend", "nosuch"]])
def test_an_unknown_org_is_one_line_naming_the_setting_to_check(sqlite_url, argv):
    """README: every error names the problem and the setting to check (address, tax and statement
    said "unknown org 'nosuch'" alone)."""
    result = CliRunner().invoke(app, argv, env={"BILLING_DATABASE_URL": sqlite_url, "COLUMNS": "200"})
    assert result.exit_code == 1
    assert result.output == "error: unknown org 'nosuch' in the database (BILLING_DATABASE_URL)\n", result.output
