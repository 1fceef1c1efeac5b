"""Bad input on the command line: one line naming the problem, exit 2, nothing written and
nothing sent (issue 14). Temporal's address points nowhere: a request that got that far would
fail differently."""

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from db.models import Organisation
from db.session import Database
from workers.cli import app
from workers.cli.usage_import import UsageImportError, decode, parse_usage_csv


@pytest.fixture
def cli(monkeypatch, sqlite_url):
    monkeypatch.setenv("BILLING_DATABASE_URL", sqlite_url)
    monkeypatch.setenv("BILLING_TEMPORAL_ADDRESS", "127.0.0.1:1")
    monkeypatch.setenv("COLUMNS", "200")

    def run(*args: str) -> tuple[int, list[str]]:
        result = CliRunner().invoke(app, list(args))
        assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
        return result.exit_code, [line for line in result.output.splitlines() if line.strip()]
    return run


def orgs(sqlite_url: str) -> int:
    with Database(sqlite_url).transaction() as session:
        return session.scalar(select(func.count()).select_from(Organisation))


@pytest.mark.parametrize("args, message", [
    (["--name", "x" * 10_000], "error: name: at most 200 characters, got 10000"),
    (["--name", "Acme", "--user", "b@acme.test:inf"], "error: users[0].storage_gb: must be a finite number of GB, got inf"),
    (["--name", "Acme", "--user", "b@acme.test:1e400"], "error: users[0].storage_gb: must be a finite number of GB"),
    (["--name", "Acme", "--user", "b@acme.test:nan"], "error: users[0].storage_gb: must be a finite number of GB, got nan"),
    (["--name", "Acme", "--user", "b@acme.test:lots"], "error: users[0].storage_gb: 'lots' is not a number"),
    (["--name", "Acme", "--admin", "a" * 300 + "@acme.test"], "error: admin_email: an e-mail address has at most 254"),
    (["--name", "Acme", "--plan", "gold"], "error: unknown plan 'gold'; known plans: free, "),
    (["--name", "Acme", "--plan", "standard"], "error: --cycle: the paid plan standard needs --cycle monthly or "
                                               "--cycle yearly"),
])
def test_org_create_refuses_bad_values_in_one_line(cli, sqlite_url, args, message):
    base = {"--admin": "admin@acme.test"}
    for flag, value in zip(args[::2], args[1::2]):
        base[flag] = value
    argv = ["org", "create", "acme"] + [item for pair in base.items() for item in pair]
    code, lines = cli(*argv)
    assert code == 2 and len(lines) == 1 and lines[0].startswith(message), lines
    assert orgs(sqlite_url) == 0


def test_a_csv_with_a_byte_order_mark_is_read():
    text = decode("\ufeffemail,storage_gb\r\nA@x.test,1.5\r\n".encode("utf-8"))
    assert parse_usage_csv(text).rows == [("a@x.test", 1.5)]
    assert parse_usage_csv("user,storage_gb\nb@x.test,2\n").rows == [("b@x.test", 2.0)]


@pytest.mark.parametrize("content, message", [
    (b"", "the file has no usage rows"),
    (b"email,storage_gb\n\n  \n", "the file has no usage rows"),
    (b"email,storage_gb\na@x.test,1\nb@x.test,\xe9t\xe9\n", "line 3 is not UTF-8 text (byte 0xe9)"),
    (b"a@x.test,1\nb@x.test,inf\n", "line 2: storage_gb: must be a finite number of GB, got inf"),
    (b"a@x.test,1\nb@x.test,1e400\n", "line 2: storage_gb: must be a finite number of GB, got inf"),
    (b"a@x.test,1\nb@x.test,1e300\n", "line 2: storage_gb: at most 100,000 GB per mailbox"),
    (b"a@x.test,1\nb@x.test,2\nA@X.test,3\n", "line 3: user a@x.test is reported twice (first at line 1)"),
    (b"a@x.test,1,extra\n", "line 1: expected 2 columns (email,storage_gb), got 3"),
    (("x" * 300 + "@x.test,1\n").encode(), "line 1: user: an e-mail address has at most 254 characters"),
    # a header naming another size column: its numbers are not GB (5120 MB would block the mailbox)
    (b"email,storage_mb\na@x.test,5120\n", "line 1: the header names the columns 'email,storage_mb'; "
                                           "expected email,storage_gb (mailbox sizes in GB)"),
    (b"user,gb\na@x.test,5\n", "line 1: the header names the columns 'user,gb'; expected email,storage_gb"),
    (b"email\na@x.test,5\n", "line 1: the header names the columns 'email'; expected email,storage_gb"),
])
def test_usage_import_refuses_a_bad_file_whole_naming_the_line(cli, tmp_path, content, message):
    path = tmp_path / "usage.csv"
    path.write_bytes(content)
    code, lines = cli("usage", "import", "acme", str(path))
    assert code == 2 and len(lines) == 1 and message in lines[0] and "nothing was imported" in lines[0], lines


def test_usage_import_of_a_missing_file(cli, tmp_path):
    code, lines = cli("usage", "import", "acme", str(tmp_path / "nope.csv"))
    assert code == 2 and lines == [f"error: cannot read {tmp_path / 'nope.csv'}: No such file or directory"]


def test_usage_import_of_a_file_past_the_size_limit_is_refused_unread(cli, tmp_path, monkeypatch):
    monkeypatch.setenv("BILLING_MAX_INPUT_FILE_MB", "1")
    path = tmp_path / "usage.csv"
    path.write_text("b@x.test,1\n" * 100_000)   # 1.1 MB
    code, lines = cli("usage", "import", "acme", str(path))
    assert code == 2 and lines == [f"error: {path} is larger than 1 MB, the most a file given to billing may be "
                                   "(BILLING_MAX_INPUT_FILE_MB); nothing was read"], lines
    monkeypatch.delenv("BILLING_MAX_INPUT_FILE_MB")
    code, lines = cli("usage", "import", "acme", "/dev/zero")
    assert code == 2 and "/dev/zero is larger than 32 MB" in lines[0], lines


def test_a_large_file_goes_in_as_few_updates_as_fit_temporal_payloads():
    """120,000 rows of long addresses are 7 MB of JSON: Temporal takes 2 MB per payload, and the
    validator checks at most 10,000 rows in one workflow task."""
    import json
    from domain.limits import Limits
    from workers.cli.usage_import import BATCH_BYTES
    rows = "".join(f"user{i:06d}@a-rather-long-domain-name.example,{i % 9}.25\n" for i in range(120_000))
    usage = parse_usage_csv(rows, Limits(users_per_org=200_000))
    by_bytes = usage.batches(rows=10**9)
    sizes = [len(json.dumps({"rows": part})) for _, part in by_bytes]
    assert len(by_bytes) == 4 and max(sizes) <= BATCH_BYTES < 2 * 1024 * 1024
    assert [first for first, _ in by_bytes] == [sum(len(p) for _, p in by_bytes[:i]) for i in range(4)]
    batches = usage.batches()  # and at most 10,000 rows, for the validator's time
    assert [len(part) for _, part in batches] == [10_000] * 12
    small = parse_usage_csv("".join(f"u{i}@x.test,1\n" for i in range(10_000)), Limits()).batches()
    assert len(small) == 1  # an org of up to 10,000 users: one Update


@pytest.mark.parametrize("argv, message", [
    (["org", "downgrade", "acme", "--to", "standard", "--by", "rina@billing.test", "--reason", ""],
     "request_downgrade refused: reason: required for staff actions (they are audited)"),
    (["org", "add-licences", "acme", "1000000000000"], "add_licences refused: count: at most 100,000 licences per org"),
    (["storage", "buy", "acme", "--unit", "25", "--count", "100000"],
     "buy_storage refused: count: at most 1,000 units per purchase"),
    (["usage", "set", "acme", "b@acme.test", "inf"], "set_usage refused: storage_gb: must be a finite number of GB"),
    (["org", "add-user", "acme", "a" * 300 + "@x.test"], "add_user refused: email: at most 254 characters"),
    (["org", "add-user", "acme", "b@x.test", "--by", "x" * 300], "add_user refused: requested_by: at most 254 characters"),
    (["org", "add-licences", "acme", "-5"], "add_licences refused: count: must be at least 1, got -5"),
    # A value that names nothing in the catalog is bad usage too, known before sending.
    (["org", "upgrade", "acme", "--plan", "gold"], "upgrade refused: unknown plan 'gold'; known plans: free, "),
    (["org", "downgrade", "acme", "--to", "gold", "--by", "rina@billing.test", "--reason", "asked"],
     "request_downgrade refused: unknown plan 'gold'; known plans: free, "),
    (["storage", "buy", "acme", "--unit", "7"], "buy_storage refused: unit_gb: no 7 GB storage unit; units are 5, 25"),
    (["tier", "change", "acme", "1500"], "change_tier refused: contacts must be a multiple of 1000 between 1000 and"),
    (["addon", "buy", "acme", "gold"], "buy_addon refused: addon: unknown add-on 'gold'; add-ons are "),
    (["add-licences", "acme", "-5"], "add_licences refused: count: must be at least 1, got -5"),
    (["usage", "set", "acme", "b@acme.test", "-1"], "set_usage refused: storage_gb: must be a number of GB >= 0, got -1"),
    (["tier", "contacts", "acme", "-1"], "set_contacts refused: contacts: must be at least 0, got -1"),
    (["storage", "buy", "acme", "--unit", "25", "--count=-2"], "buy_storage refused: count: must be at least 1, got -2"),
])
def test_operations_refuse_out_of_bounds_values_before_sending(cli, argv, message):
    code, lines = cli(*argv)
    assert code == 2 and len(lines) == 1 and lines[0].startswith(f"error: {message}"), lines


@pytest.mark.parametrize("value", ["not an email", "a@b", "<b@acme.test>"])
def test_a_malformed_address_is_the_same_bad_value_in_add_user_as_in_org_create(cli, sqlite_url, value):
    """One classification (domain.errors.BAD_VALUE_TYPES): an address is checked before sending,
    in the words org create uses for it, exit 2 (it was sent, and refused with exit 1)."""
    code, lines = cli("org", "create", "acme", "--name", "Acme", "--admin", value)
    assert code == 2 and lines == [f"error: admin_email: {value!r} is not a valid e-mail address"], lines
    assert orgs(sqlite_url) == 0
    for argv, refusal in ((["org", "add-user", "acme", value], "add_user refused: email"),
                          (["usage", "set", "acme", value, "1"], "set_usage refused: user"),
                          (["storage", "allocate", "acme", value, "--unit", "25"], "allocate_storage refused: user")):
        code, lines = cli(*argv)
        assert code == 2 and lines == [f"error: {refusal}: {value!r} is not a valid e-mail address"], (argv, lines)


def test_a_non_utf8_file_is_named_with_its_line():
    with pytest.raises(UsageImportError, match=r"^line 2 is not UTF-8 text"):
        decode(b"a@x.test,1\n\xff\xfe,2\n")


def _billing(*args: str, **env: str) -> tuple[int, list[str]]:
    import os
    import subprocess
    import sys
    result = subprocess.run([sys.executable, "-m", "workers.cli", *args], capture_output=True, text=True,
                            env={**os.environ, "COLUMNS": "200", **env}, timeout=60)
    return result.returncode, [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]


def test_temporal_out_of_reach_is_one_line_naming_the_setting_and_exit_3(sqlite_url):
    code, lines = _billing("org", "add-licences", "acme", "2", BILLING_DATABASE_URL=sqlite_url,
                           BILLING_TEMPORAL_ADDRESS="127.0.0.1:1")
    assert code == 3 and len(lines) == 1, lines
    assert lines[0].startswith("error: Temporal unreachable at 127.0.0.1:1") and "BILLING_TEMPORAL_ADDRESS" in lines[0]


def test_a_database_out_of_reach_or_without_tables_is_one_line_and_exit_3(tmp_path):
    code, lines = _billing("invoice", "list", "acme", BILLING_DATABASE_URL="postgresql+psycopg2://postgres@127.0.0.1:1/none")
    assert code == 3 and len(lines) == 1 and lines[0].startswith("error: database unreachable (") \
        and lines[0].endswith("check BILLING_DATABASE_URL"), lines
    (tmp_path / "empty.db").touch()
    code, lines = _billing("invoice", "list", "acme", BILLING_DATABASE_URL=f"sqlite:///{tmp_path / 'empty.db'}")
    assert code == 3 and lines == ["error: the database has no billing tables (no such table: organisations): "
                                   "run `billing db upgrade`, or check BILLING_DATABASE_URL"], lines


def test_maxima_cannot_be_configured_beyond_what_the_columns_carry(monkeypatch):
    from pydantic import ValidationError
    from workers.runtime.config import Settings
    monkeypatch.setenv("BILLING_MAX_UNITS_PER_PURCHASE", str(10**30))
    with pytest.raises(ValidationError, match="max_units_per_purchase"):
        Settings()


def test_a_setting_out_of_range_is_one_line_naming_it(sqlite_url):
    code, lines = _billing("invoices", "acme", BILLING_DATABASE_URL=sqlite_url,
                           BILLING_MAX_UNITS_PER_PURCHASE="1000000000")
    assert code == 2 and lines == ["error: BILLING_MAX_UNITS_PER_PURCHASE: Input should be less than or equal to 10000"]


@pytest.mark.parametrize("setting, value, message", [
    ("BILLING_SMTP_PORT", "70000", "error: BILLING_SMTP_PORT: Input should be less than 65536"),
    ("BILLING_SMTP_PORT", "abc", "error: BILLING_SMTP_PORT: Input should be a valid integer"),
    ("BILLING_METRICS_PORT", "0", "error: BILLING_METRICS_PORT: Input should be greater than 0"),
    ("BILLING_API_PORT", "70000", "error: BILLING_API_PORT: Input should be less than 65536"),
    ("BILLING_TEMPORAL_ADDRESS", "localhost:70000",
     "error: BILLING_TEMPORAL_ADDRESS: the port must be a number from 1 to 65535, got '70000' in 'localhost:70000'"),
    ("BILLING_TEMPORAL_ADDRESS", "localhost:abc", "error: BILLING_TEMPORAL_ADDRESS: the port must be a number"),
    ("BILLING_TEMPORAL_ADDRESS", "localhost", "error: BILLING_TEMPORAL_ADDRESS: must be HOST:PORT"),
    ("TEMPORAL_ADDRESS", "localhost:0", "error: TEMPORAL_ADDRESS (or the temporal CLI profile's address): the port "
                                        "must be a number from 1 to 65535, got '0'"),
])
def test_a_port_setting_out_of_range_is_one_line_naming_it_exit_2(sqlite_url, setting, value, message):
    """0, 70000 or "abc" gave a traceback (the Temporal address) or a late failure (SMTP, metrics)."""
    code, lines = _billing("org", "add-licences", "acme", "2", BILLING_DATABASE_URL=sqlite_url, **{setting: value})
    assert code == 2 and len(lines) == 1 and lines[0].startswith(message), lines


def test_a_log_format_other_than_text_or_json_is_one_line_naming_it_exit_2(sqlite_url):
    """BILLING_LOG_FORMAT=xml was taken for text without a word (deploy/README.md names the two)."""
    code, lines = _billing("org", "add-licences", "acme", "2", BILLING_DATABASE_URL=sqlite_url,
                           BILLING_LOG_FORMAT="xml")
    assert code == 2 and lines == ["error: BILLING_LOG_FORMAT: Input should be 'text' or 'json'"], lines


@pytest.mark.parametrize("setting, value, message", [
    ("BILLING_TRIAL_DAYS", "0", "error: BILLING_TRIAL_DAYS: trial_days must be positive, got 0; "
                                "BILLING_TRIAL_REMINDER_DAYS: trial_reminder_days must each be between 1 and"),
    ("BILLING_RETRY_DAYS", "3,1", "error: BILLING_RETRY_DAYS: retry_days must be positive, strictly increasing days, "
                                  "got [3, 1]"),
    ("BILLING_DOWNGRADE_WINDOW_MIN_DAYS", "40", "error: BILLING_DOWNGRADE_WINDOW_MIN_DAYS: downgrade window must "
                                                "satisfy 0 <= min days <= max days"),
    ("BILLING_LARGE_ACCOUNT_LICENCES", "0", "error: BILLING_LARGE_ACCOUNT_LICENCES: large_account_licences must be "
                                            "positive"),
    ("BILLING_STAFF_NOTIFY_EMAIL", "billing staff", "error: BILLING_STAFF_NOTIFY_EMAIL: staff_notify_email: "
                                                    "'billing staff' is not a valid e-mail address"),
])
def test_a_policy_setting_out_of_range_is_one_line_naming_it_exit_2(sqlite_url, setting, value, message):
    """BILLING_TRIAL_DAYS=0 gave a Python traceback, exit 1: the policy was checked only when a
    command first used it (after its other checks)."""
    code, lines = _billing("org", "create", "acme", "--name", "Acme", "--admin", "admin@acme.test",
                           BILLING_DATABASE_URL=sqlite_url, **{setting: value})
    assert code == 2 and len(lines) == 1 and lines[0].startswith(message), lines
    assert orgs(sqlite_url) == 0


@pytest.mark.parametrize("args", [
    ("org", "create", "acme", "--name", "Acme", "--admin", "admin@acme.test"),
    ("org", "upgrade", "acme", "--plan", "standard"),
    ("org", "list", "--plan", "standard"),
])
@pytest.mark.parametrize("catalog, problem", [
    ("nope.yaml", "catalog file {path}: No such file or directory"),
    ("bad.yaml", "catalog.plans: must be a mapping that includes the 'free' plan"),
])
def test_a_bad_catalog_setting_is_one_line_naming_it_exit_2(sqlite_url, tmp_path, args, catalog, problem):
    """A missing or broken BILLING_CATALOG_PATH gave a Python traceback, exit 1 (org create, org
    list), or an `upgrade refused:` line, exit 1, as if a rule had said no."""
    path = tmp_path / catalog
    if catalog == "bad.yaml":
        path.write_text("plans: {}\n", encoding="utf-8")
    code, lines = _billing(*args, BILLING_DATABASE_URL=sqlite_url, BILLING_CATALOG_PATH=str(path))
    assert code == 2 and lines == [f"error: BILLING_CATALOG_PATH: {problem.format(path=path)}"], lines
    assert orgs(sqlite_url) == 0


def test_a_worker_with_a_policy_setting_out_of_range_stops_in_one_line(sqlite_url):
    import os
    import subprocess
    import sys
    result = subprocess.run([sys.executable, "-m", "workers.runtime.worker"], capture_output=True, text=True,
                            timeout=60, env={**os.environ, "BILLING_DATABASE_URL": sqlite_url,
                                             "BILLING_RETRY_DAYS": "0,3"})
    assert result.returncode == 2 and result.stderr == ("cannot start: BILLING_RETRY_DAYS: retry_days must be "
                                                        "positive, strictly increasing days, got [0, 3]\n")


@pytest.mark.parametrize("process", ["workers.runtime.worker", "workers.runtime.documents", "workers.api"])
def test_a_process_with_a_port_setting_out_of_range_stops_in_one_line(process, sqlite_url):
    import os
    import subprocess
    import sys
    result = subprocess.run([sys.executable, "-m", process], capture_output=True, text=True, timeout=60,
                            env={**os.environ, "BILLING_DATABASE_URL": sqlite_url, "BILLING_SMTP_PORT": "0",
                                 "BILLING_API_PORT": "0"})
    assert result.returncode == 2 and result.stderr.startswith("cannot start: BILLING_")
    assert len(result.stderr.splitlines()) == 1 and "Input should be greater than 0" in result.stderr, result.stderr


def test_a_file_sent_in_parts_is_refused_whole_when_a_user_is_unknown(cli, tmp_path):
    """Over 10,000 rows go in several Updates: the CLI checks every user in the database first
    (the decision's own check), so no part is applied before a refusal."""
    path = tmp_path / "usage.csv"
    path.write_text("".join(f"u{i}@x.test,1\n" for i in range(10_001)))
    code, lines = cli("usage", "import", "acme", str(path))
    assert code == 1 and lines == ["error: usage import refused: line 1: user: no user u0@x.test in org acme; "
                                   "nothing was imported"], lines


@pytest.mark.parametrize("argv", [["dunning", "list"], ["escalation", "list"], ["org", "list"], ["org", "show", "acme"],
                                  ["org", "history", "acme"], ["invoice", "list", "acme"],
                                  ["org", "address", "acme", "1 Main St"], ["org", "tax", "acme", "--country", "ID"]])
def test_a_missing_sqlite_database_is_exit_3_and_nothing_is_created(tmp_path, argv):
    missing = tmp_path / "nope" / "missing.db"
    code, lines = _billing(*argv, BILLING_DATABASE_URL=f"sqlite:///{missing}", BILLING_TEMPORAL_ADDRESS="127.0.0.1:1")
    assert code == 3 and lines[-1] == f"error: no database at {missing} (BILLING_DATABASE_URL); create it with " \
        "billing db upgrade", lines
    assert not missing.parent.exists(), list(tmp_path.rglob("*"))


def test_org_create_with_a_missing_sqlite_database_creates_nothing(tmp_path):
    missing = tmp_path / "nope" / "missing.db"
    code, lines = _billing("org", "create", "acme", "--name", "Acme", "--admin", "admin@acme.test",
                           BILLING_DATABASE_URL=f"sqlite:///{missing}", BILLING_TEMPORAL_ADDRESS="127.0.0.1:1")
    assert code == 3 and len(lines) == 1, lines   # Temporal is asked first: it is down too
    assert not missing.parent.exists(), list(tmp_path.rglob("*"))


def test_db_upgrade_creates_the_missing_sqlite_database(tmp_path):
    missing = tmp_path / "nope" / "missing.db"
    code, lines = _billing("db", "upgrade", BILLING_DATABASE_URL=f"sqlite:///{missing}")
    assert code == 0 and missing.is_file(), lines
    code, lines = _billing("dunning", "list", "--json", BILLING_DATABASE_URL=f"sqlite:///{missing}")
    assert code == 0, lines


@pytest.mark.parametrize("argv", [["org", "add-licences", "acme", "--bogus", "5"], ["org", "add-licences", "acme", "5", "-x"],
                                  ["tier", "contacts", "acme", "--count=-1"]])
def test_an_unknown_option_is_still_reported_where_numbers_may_be_negative(sqlite_url, argv):
    code, lines = _billing(*argv, BILLING_DATABASE_URL=sqlite_url, BILLING_TEMPORAL_ADDRESS="127.0.0.1:1")
    name = argv[-2] if argv[-2].startswith("-") else argv[-1].split("=")[0]
    assert code == 2 and lines == [f"error: No such option: {name} (see `billing {argv[0]} {argv[1]} --help`)"], lines


def test_a_temporal_host_that_does_not_resolve_is_named_whole(sqlite_url):
    code, lines = _billing("org", "add-licences", "acme", "2", BILLING_DATABASE_URL=sqlite_url,
                           BILLING_TEMPORAL_ADDRESS="nosuchhost.invalid:7233")
    assert code == 3 and len(lines) == 1, lines
    assert lines[0].startswith("error: Temporal unreachable at nosuchhost.invalid:7233 (dns error: ") \
        and lines[0].endswith("); check BILLING_TEMPORAL_ADDRESS") and 'error: ")' not in lines[0], lines


def test_org_show_with_temporal_and_the_database_down_names_both():
    code, lines = _billing("org", "show", "acme", BILLING_TEMPORAL_ADDRESS="127.0.0.1:1",
                           BILLING_DATABASE_URL="postgresql+psycopg2://postgres@127.0.0.1:1/none")
    assert code == 3 and len(lines) == 1, lines
    assert lines[0].startswith("error: Temporal unreachable at 127.0.0.1:1 (Connection refused); check "
                               "BILLING_TEMPORAL_ADDRESS; and database unreachable (") \
        and lines[0].endswith("check BILLING_DATABASE_URL"), lines
