"""An invalid scenario exits 2 with a message naming the bad field, and nothing runs."""

import time

import pytest
from dateutil.relativedelta import relativedelta

from tests.simulate.conftest import simulate
from workers.simulate import run as simulate_module
from workers.simulate.fields import ScenarioError, parse_duration

BASE = """\
start: "2026-01-31T09:00:00+00:00"
until: "P60D"
org:
  id: acme
  admin_email: admin@acme.test
  plan: {plan}
  cycle: monthly
  card: "{card}"
  users:
    - {{email: admin@acme.test, storage_gb: 1}}
    - {{email: {user}, storage_gb: 2}}
actions:
{actions}
"""


def scenario(tmp_path, actions: str = "  - {at: P1D, do: add_licences, count: 1}", plan: str = "standard",
             card: str = "4242424242424242", user: str = "b@acme.test", text: str | None = None):
    path = tmp_path / "scenario.yaml"
    path.write_text(text if text is not None else BASE.format(actions=actions, plan=plan, card=card, user=user),
                    encoding="utf-8")
    return path


@pytest.fixture(autouse=True)
def nothing_runs(monkeypatch):
    """An invalid file must be refused before any server, database or SMTP server starts."""
    async def must_not_run(*args, **kwargs):
        raise AssertionError("the simulation started for an invalid scenario")
    monkeypatch.setattr(simulate_module, "run_scenario", must_not_run)


@pytest.mark.parametrize("kwargs, field, words", [
    # an unknown action
    ({"actions": "  - {at: P1D, do: explode}"}, "actions[0].do", ["unknown action 'explode'", "upgrade"]),
    ({"actions": "  - {at: P1D, do: add_licences, count: 1}\n  - {at: P2D}"}, "actions[1].do", ["required"]),
    # a bad card
    ({"actions": "  - {at: P1D, do: update_card, card: '4242424242424241'}"}, "actions[0].card",
     ["fails the checksum"]),
    ({"actions": "  - {at: P1D, do: update_card, card: 'abc'}"}, "actions[0].card", ["12 to 19 digits"]),
    ({"actions": "  - {at: P1D, do: update_card, card: '4111111111111111'}"}, "actions[0].card",
     ["not a sandbox test card"]),
    ({"card": "4242 4242 4242 4243"}, "org.card", ["fails the checksum"]),
    ({"card": "4000000000000002"}, "org.card", ["rejected by the gateway"]),
    # a bad duration
    ({"actions": "  - {at: 10 days, do: add_licences, count: 1}"}, "actions[0].at", ["ISO-8601 duration"]),
    ({"actions": "  - {at: P1.5D, do: add_licences, count: 1}"}, "actions[0].at", ["ISO-8601 duration"]),
    ({"actions": "  - {at: PT, do: add_licences, count: 1}"}, "actions[0].at", ["ISO-8601 duration"]),
    ({"actions": "  - {at: 10, do: add_licences, count: 1}"}, "actions[0].at", ["ISO-8601 duration"]),
    ({"actions": "  - {at: P61D, do: add_licences, count: 1}"}, "actions[0].at", ["after the end of the run"]),
    # an unknown plan
    ({"plan": "platinum"}, "org.plan", ["unknown plan 'platinum'"]),
    ({"actions": "  - {at: P1D, do: upgrade, plan: platinum}"}, "actions[0].plan", ["unknown plan 'platinum'"]),
    ({"actions": "  - {at: P1D, do: request_downgrade, plan: gold, requested_by: r@b.test}"},
     "actions[0].plan", ["unknown plan 'gold'"]),
    # wrong fields and types
    ({"actions": "  - {at: P1D, do: add_licences, count: two}"}, "actions[0].count", ["whole number"]),
    ({"actions": "  - {at: P1D, do: add_licences, count: 1, colour: red}"}, "actions[0].colour",
     ["unknown field"]),
    ({"actions": "  - {at: P1D, do: upgrade, plan: professional, cycle: weekly}"}, "actions[0].cycle",
     ["'weekly'"]),
    ({"actions": "  - {at: P1D, do: buy_storage, unit_gb: 7}"}, "actions[0].unit_gb", ["no 7 GB storage unit"]),
    # what an action names in the catalog, checked by the rules' own check (as the CLI does)
    ({"actions": "  - {at: P1D, do: buy_addon, addon: gold}"}, "actions[0].addon", ["unknown add-on 'gold'"]),
    ({"actions": "  - {at: P1D, do: change_tier, contacts: 1500}"}, "actions[0].contacts",
     ["must be a multiple of 1000"]),
    ({"actions": "  - {at: P1D, do: add_user}"}, "actions[0].email", ["required"]),
    ({"user": "not-an-email"}, "org.users[1].email", ["not a valid e-mail address"]),
    # an address is a value of the file, as in org.users (was an action_rejected at run time)
    ({"actions": "  - {at: P1D, do: add_user, email: not an email}"}, "actions[0].email",
     ["'not an email' is not a valid e-mail address"]),
    ({"actions": "  - {at: P1D, do: set_usage, user: b, storage_gb: 1}"}, "actions[0].user",
     ["'b' is not a valid e-mail address"]),
])
def test_invalid_scenario_exits_2_naming_the_field(tmp_path, kwargs, field, words):
    result = simulate(scenario(tmp_path, **kwargs), "--json")
    assert result.exit_code == 2, result.stderr
    assert result.stdout == ""
    assert result.stderr.startswith(f"scenario error: {field}: "), result.stderr
    for word in words:
        assert word in result.stderr


@pytest.mark.parametrize("text, field", [
    ("start: '2026-01-31T09:00:00'\nuntil: P1D\norg: {id: a, admin_email: a@a.test}\n", "start"),
    ("start: 2026-01-31\nuntil: P1D\norg: {id: a, admin_email: a@a.test}\n", "start"),
    ("start: '2026-01-31T09:00:00Z'\nuntil: 30 days\norg: {id: a, admin_email: a@a.test}\n", "until"),
    ("start: '2026-01-31T09:00:00Z'\nuntil: P0D\norg: {id: a, admin_email: a@a.test}\n", "until"),
    ("start: '2026-01-31T09:00:00Z'\nuntil: P1D\n", "org"),
    ("start: '2026-01-31T09:00:00Z'\nuntil: P1D\norg: {id: a, admin_email: a@a.test}\nspeed: fast\n", "speed"),
    ("start: '2026-01-31T09:00:00Z'\nuntil: P1D\norg: {id: A!, admin_email: a@a.test}\n", "org.id"),
    ("start: '2026-01-31T09:00:00Z'\nuntil: P1D\norg: {id: a, admin_email: a@a.test, locale: fr}\n", "org.locale"),
    ("start: '2026-01-31T09:00:00Z'\nuntil: P1D\norg: {id: a, admin_email: a@a.test, plan: standard}\n",
     "org.cycle"),
    ("start: '2026-01-31T09:00:00Z'\nuntil: P1D\npolicy: {retry_days: [3, 1]}\n"
     "org: {id: a, admin_email: a@a.test}\n", "policy.retry_days"),
    ("start: '2026-01-31T09:00:00Z'\nuntil: P1D\npolicy: {trial_days: 2}\norg: {id: a, admin_email: a@a.test}\n",
     "policy.trial_days"),
    ("start: '2026-01-31T09:00:00Z'\nuntil: P1D\npolicy: {grace: 3}\norg: {id: a, admin_email: a@a.test}\n",
     "policy.grace"),
    # an escalation e-mail to no address was retried until the run's time limit, a warning a second
    ("start: '2026-01-31T09:00:00Z'\nuntil: P1D\npolicy: {staff_notify_email: not an email}\n"
     "org: {id: a, admin_email: a@a.test}\n", "policy.staff_notify_email"),
    ("start: '2026-01-31T09:00:00Z'\nuntil: P1D\npolicy: {billing_staff: [rina]}\n"
     "org: {id: a, admin_email: a@a.test}\n", "policy.billing_staff"),
    ("start: '2026-01-31T09:00:00Z'\nuntil: P1D\norg: {id: a, admin_email: a@a.test}\nactions: {do: cancel}\n",
     "actions"),
])
def test_invalid_top_level_fields(tmp_path, text, field):
    result = simulate(scenario(tmp_path, text=text))
    assert result.exit_code == 2, result.stderr
    assert result.stderr.startswith(f"scenario error: {field}: "), result.stderr


def test_not_yaml_or_missing_file_exits_2(tmp_path):
    result = simulate(scenario(tmp_path, text="start: [unclosed\n"))
    assert result.exit_code == 2 and "not valid YAML" in result.stderr and "line" in result.stderr
    result = simulate(tmp_path / "nowhere.yaml")
    assert result.exit_code == 2 and "cannot read" in result.stderr
    result = simulate()
    assert result.exit_code == 2 and "--example" in result.stderr


@pytest.mark.parametrize("content, problem", [
    (BASE.format(actions="", plan="standard", card="4242424242424242", user="b@acme.test")
     .replace("acme", "caf\u00e9").encode("latin-1"), "line 4 is not UTF-8 text (byte 0xe9)"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "line 1 is not UTF-8 text (byte 0x89)"),
    ("start: x\n".encode("utf-16"), "line 1 is not UTF-8 text (byte 0xff)"),
    (b"start: x\nuntil: P1D\n\x00\x01\x02", "line 3 is not text (a NUL byte): a binary file"),
])
def test_a_binary_or_non_utf8_file_is_one_line_naming_it_and_exit_2(tmp_path, content, problem):
    path = tmp_path / "scenario.yaml"
    path.write_bytes(content)
    result = simulate(path, "--json")
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr == f"scenario error: {path} is not a scenario file: {problem}; a scenario is YAML saved as UTF-8\n"


@pytest.mark.parametrize("limit", ["1", None])
def test_a_file_past_the_size_limit_is_refused_unread_in_one_line(tmp_path, limit):
    """It was read whole whatever its size (/dev/zero filled the memory)."""
    path = tmp_path / "scenario.yaml"
    if limit:
        path.write_bytes(b"# " + b"x" * (1024 * 1024) + b"\n")
    else:
        path = "/dev/zero"      # endless: only a bounded read ends
    result = simulate(path, "--json", env={"BILLING_MAX_INPUT_FILE_MB": limit})
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr == (f"scenario error: {path} is larger than {limit or 32} MB, the most a file given to "
                             "billing may be (BILLING_MAX_INPUT_FILE_MB); nothing was read\n")


@pytest.mark.parametrize("setting, value, message", [
    ("BILLING_METRICS_PORT", "99999", "BILLING_METRICS_PORT: Input should be less than 65536"),
    ("BILLING_LARGE_ACCOUNT_LICENCES", "abc", "BILLING_LARGE_ACCOUNT_LICENCES: Input should be a valid integer, "
                                              "unable to parse string as an integer"),
    ("BILLING_RETRY_DAYS", "0,0", "BILLING_RETRY_DAYS: retry_days must be positive, strictly increasing days, "
                                  "got [0, 0]"),
])
def test_a_setting_out_of_range_is_refused_in_one_line_naming_it_exit_2(tmp_path, setting, value, message):
    """It was exit 1, `simulation failed: configuration: 1 validation error for Settings; ...`
    with pydantic's field name and its web link; the configuration is refused before anything runs."""
    result = simulate(scenario(tmp_path), "--json", env={setting: value})
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr == f"simulation refused: {message}\n"


def test_a_gateway_rejected_card_is_not_a_scenario_error(tmp_path, monkeypatch):
    """4000000000000002 is a well-formed test card the gateway refuses when it is set: at run
    time that is an `action_rejected` event, so the file itself is valid."""
    from domain.catalog import load_catalog
    from domain.policy import Policy
    from workers.simulate.scenario import load_scenario
    path = scenario(tmp_path, actions="  - {at: P1D, do: update_card, card: '4000000000000002'}")
    parsed = load_scenario(path, load_catalog(), Policy())
    [action] = parsed.actions
    assert action.request is None
    assert action.rejection == "card ending 0002 was rejected by the gateway; the previous card stays in place"


def test_scenario_parsing_keeps_file_order_at_the_same_instant(tmp_path):
    from domain.catalog import load_catalog
    from domain.policy import Policy
    from workers.simulate.scenario import load_scenario
    path = scenario(tmp_path, actions="\n".join([
        "  - {at: P2D, do: cancel, requested_by: a@acme.test}",
        "  - {at: P1D, do: add_licences, count: 1}",
        "  - {at: PT24H, do: add_user, email: c@acme.test}",
        "  - {at: P1D, do: update_card, card: 4242424242424242}",   # unquoted: YAML reads an int
    ]))
    parsed = load_scenario(path, load_catalog(), Policy(billing_staff=("x@y.test",)))
    assert [(a.index, a.kind) for a in parsed.actions] == [(1, "add_licences"), (2, "add_user"),
                                                           (3, "update_card"), (0, "cancel")]
    assert parsed.actions[2].request.last4 == "4242" and parsed.actions[2].request.token.startswith("tok_")
    assert parsed.policy.billing_staff is None   # in a simulation every requested_by is staff by default


@pytest.mark.parametrize("text, expected", [
    ("P10D", relativedelta(days=10)),
    ("P1M", relativedelta(months=1)),
    ("P1Y2M3DT4H5M6S", relativedelta(years=1, months=2, days=3, hours=4, minutes=5, seconds=6)),
    ("PT36H", relativedelta(hours=36)),
    ("P2W", relativedelta(days=14)),
    ("P0D", relativedelta()),
])
def test_durations(text, expected):
    assert parse_duration(text, "at") == expected


@pytest.mark.parametrize("text", ["10 days", "P", "PT", "P1DT", "p10d", "P-1D", "P1.5D", "PT1.5S", "P1H", "1D",
                                  "P1D2M", ""])
def test_bad_durations(text):
    with pytest.raises(ScenarioError) as err:
        parse_duration(text, "actions[3].at")
    assert err.value.path == "actions[3].at"


# ---- bounds: every value the database must store and the bill must price (issue 14) ----------------

LONG = "a" * 10_000
LONG_EMAIL = "a" * 10_000 + "@acme.test"


@pytest.mark.parametrize("kwargs, field, words", [
    ({"actions": "  - {at: P1D, do: set_usage, user: b@acme.test, storage_gb: .inf}"}, "actions[0].storage_gb",
     ["finite number of GB", "inf"]),
    ({"actions": "  - {at: P1D, do: set_usage, user: b@acme.test, storage_gb: 1.0e+400}"},
     "actions[0].storage_gb", ["finite number of GB"]),
    ({"actions": "  - {at: P1D, do: set_usage, user: b@acme.test, storage_gb: 1e400}"},  # YAML 1.1: text
     "actions[0].storage_gb", ["expected a number", "1e400"]),
    ({"actions": "  - {at: P1D, do: set_usage, user: b@acme.test, storage_gb: .nan}"}, "actions[0].storage_gb",
     ["finite number of GB", "nan"]),
    ({"actions": "  - {at: P1D, do: set_usage, user: b@acme.test, storage_gb: -1}"}, "actions[0].storage_gb",
     [">= 0"]),
    ({"actions": "  - {at: P1D, do: add_user, email: c@acme.test, storage_gb: 1.0e+300}"}, "actions[0].storage_gb",
     ["GB per mailbox"]),
    ({"actions": f"  - {{at: P1D, do: add_licences, count: {10**12}}}"}, "actions[0].count",
     ["at most 100,000", str(10**12)]),
    ({"actions": f"  - {{at: P1D, do: buy_storage, unit_gb: 25, count: {10**30}}}"}, "actions[0].count",
     ["at most 1,000"]),
    ({"actions": f"  - {{at: P1D, do: remove_storage, unit_gb: 25, count: {10**30}}}"}, "actions[0].count",
     ["at most 1,000"]),
    ({"actions": f"  - {{at: P1D, do: change_tier, contacts: {10**30}}}"}, "actions[0].contacts", ["at most"]),
    ({"actions": f"  - {{at: P1D, do: set_contacts, contacts: {10**30}}}"}, "actions[0].contacts", ["at most"]),
    ({"actions": "  - {at: P1D, do: set_contacts, contacts: -1}"}, "actions[0].contacts", ["at least 0"]),
    ({"actions": "  - {at: P1D, do: add_licences, count: 0}"}, "actions[0].count", ["at least 1"]),
    ({"actions": f"  - {{at: P1D, do: resolve_escalation, action: extend, extend_days: {10**30}, "
                 "requested_by: r@b.test, reason: x}"}, "actions[0].extend_days", ["at most"]),
    ({"actions": f"  - {{at: P1D, do: cancel, requested_by: {LONG_EMAIL}}}"}, "actions[0].requested_by",
     ["at most 254 characters", "10010"]),
    ({"actions": f"  - {{at: P1D, do: add_user, email: {LONG_EMAIL}}}"}, "actions[0].email",
     ["at most 254 characters"]),
    ({"actions": f"  - {{at: P1D, do: set_usage, user: {LONG_EMAIL}, storage_gb: 1}}"}, "actions[0].user",
     ["at most 254 characters"]),
    ({"actions": f"  - {{at: P1D, do: cancel, requested_by: a@acme.test, reason: {LONG}}}"}, "actions[0].reason",
     ["at most 500 characters"]),
    ({"actions": '  - {at: P1D, do: cancel, requested_by: a@acme.test, reason: "a\\0b"}'}, "actions[0].reason",
     ["control characters"]),
    ({"actions": f"  - {{at: P1D, do: add_licences, count: 1, requested_by: {LONG_EMAIL}}}"},
     "actions[0].requested_by", ["at most 254 characters"]),
    ({"actions": "  - {at: P99999999999999D, do: add_licences, count: 1}"}, "actions[0].at", ["year 9999"]),
    ({"actions": f"  - {{at: P{'9' * 5000}D, do: add_licences, count: 1}}"}, "actions[0].at", ["ISO-8601"]),
    ({"user": LONG_EMAIL}, "org.users[1].email", ["at most 254 characters"]),
])
def test_out_of_bounds_values_exit_2_naming_the_field(tmp_path, kwargs, field, words):
    started = time.monotonic()
    result = simulate(scenario(tmp_path, **kwargs), "--json")
    assert time.monotonic() - started < 10, "refusing a value must not take long"
    assert result.exit_code == 2, result.stderr
    assert result.stdout == ""
    assert result.stderr.startswith(f"scenario error: {field}: "), result.stderr
    assert result.stderr.count("\n") == 1 and len(result.stderr) < 400, result.stderr
    for word in words:
        assert word in result.stderr, result.stderr


ORG_ONLY = """\
start: "2026-01-31T09:00:00+00:00"
until: "P60D"
{policy}org:
  id: {id}
  name: {name}
  admin_email: {admin}
  plan: standard
  cycle: monthly
  licences: {licences}
  users:
    - {{email: admin@acme.test, storage_gb: 1}}
    - {{email: b@acme.test, storage_gb: {storage}}}
"""


def org_scenario(tmp_path, policy: str = "", id: str = "acme", name: str = "Acme", admin: str = "admin@acme.test",
                 licences: str = "3", storage: str = "2"):
    return scenario(tmp_path, text=ORG_ONLY.format(policy=policy, id=id, name=name, admin=admin, licences=licences,
                                                   storage=storage))


@pytest.mark.parametrize("kwargs, field, words", [
    ({"storage": ".inf"}, "org.users[1].storage_gb", ["finite number of GB", "inf"]),
    ({"storage": ".nan"}, "org.users[1].storage_gb", ["finite number of GB", "nan"]),
    ({"storage": "1.0e+400"}, "org.users[1].storage_gb", ["finite number of GB"]),
    ({"storage": str(10**30)}, "org.users[1].storage_gb", ["GB per mailbox"]),
    ({"admin": LONG_EMAIL}, "org.admin_email", ["at most 254 characters"]),
    ({"id": LONG}, "org.id", ["1-63 lowercase letters", "10000 characters"]),
    ({"name": LONG}, "org.name", ["at most 200 characters"]),
    ({"licences": str(10**12)}, "org.licences", ["at most 100,000"]),
    ({"licences": str(10**30)}, "org.licences", ["at most 100,000"]),
    ({"licences": "9" * 5000}, "", ["not valid YAML", "line 9", "too long"]),
    ({"policy": f"policy: {{trial_days: {10**30}}}\n"}, "policy.trial_days", ["at most"]),
    ({"policy": f"policy: {{retry_days: [1, {10**30}]}}\n"}, "policy.retry_days[1]", ["at most"]),
    ({"policy": f"policy: {{large_account_licences: {10**30}}}\n"}, "policy.large_account_licences", ["at most"]),
    ({"policy": f"policy: {{escalation_first_response_hours: {10**30}}}\n"},
     "policy.escalation_first_response_hours", ["at most"]),
    ({"policy": f"policy: {{billing_staff: [{LONG_EMAIL}]}}\n"}, "policy.billing_staff[0]", ["at most 254"]),
    ({"policy": f"policy: {{staff_notify_email: {LONG_EMAIL}}}\n"}, "policy.staff_notify_email", ["at most 254"]),
])
def test_out_of_bounds_org_and_policy_values_exit_2_naming_the_field(tmp_path, kwargs, field, words):
    started = time.monotonic()
    result = simulate(org_scenario(tmp_path, **kwargs), "--json")
    assert time.monotonic() - started < 10, "refusing a value must not take long"
    assert result.exit_code == 2, result.stderr
    assert result.stdout == ""
    prefix = f"scenario error: {field}: " if field else "scenario error: "
    assert result.stderr.startswith(prefix), result.stderr
    assert result.stderr.count("\n") == 1 and len(result.stderr) < 400, result.stderr
    for word in words:
        assert word in result.stderr, result.stderr


@pytest.mark.parametrize("text, key, line", [
    # top level
    ('start: "2026-01-31T09:00:00+00:00"\nuntil: P1D\nuntil: P2D\norg: {id: a, admin_email: a@a.test}\n',
     "until", 3),
    # inside the org
    ('start: "2026-01-31T09:00:00+00:00"\nuntil: P1D\norg:\n  id: a\n  admin_email: a@a.test\n  id: b\n', "id", 6),
    # inside an action (a flow mapping)
    ('start: "2026-01-31T09:00:00+00:00"\nuntil: P5D\norg: {id: a, admin_email: a@a.test}\nactions:\n'
     "  - {at: P1D, do: add_licences, count: 1}\n  - {at: P1D, do: add_licences, count: 1, count: 100}\n",
     "count", 6),
    # inside a user
    ('start: "2026-01-31T09:00:00+00:00"\nuntil: P1D\norg:\n  id: a\n  admin_email: a@a.test\n  users:\n'
     "    - email: a@a.test\n      storage_gb: 1\n      storage_gb: 1000\n", "storage_gb", 9),
])
def test_a_key_given_twice_is_refused_naming_the_key_and_line(tmp_path, text, key, line):
    result = simulate(scenario(tmp_path, text=text), "--json")
    assert result.exit_code == 2, result.stderr
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1, result.stderr
    assert f"duplicate key '{key}'" in result.stderr and f"at line {line}," in result.stderr, result.stderr


def test_merge_keys_may_be_overridden(tmp_path):
    """A YAML merge (<<) followed by a key of its own is not a duplicate: the key wins."""
    from domain.catalog import load_catalog
    from domain.policy import Policy
    from workers.simulate.scenario import load_scenario
    text = ('start: "2026-01-31T09:00:00+00:00"\nuntil: P5D\norg: {id: a, admin_email: a@a.test}\n'
            "actions:\n  - &one {at: P1D, do: add_licences, count: 1}\n  - {<<: *one, count: 2}\n")
    parsed = load_scenario(scenario(tmp_path, text=text), load_catalog(), Policy())
    assert [a.request.count for a in parsed.actions] == [1, 2]
