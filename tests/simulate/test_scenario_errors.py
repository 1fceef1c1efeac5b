"""An invalid scenario exits 2 with a message naming the bad field, and nothing runs."""

import pytest
from dateutil.relativedelta import relativedelta

from tests.simulate.conftest import simulate
from workers import simulate as simulate_module
from workers.simulate_scenario import ScenarioError, parse_duration

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
    ({"actions": "  - {at: P1D, do: add_user}"}, "actions[0].email", ["required"]),
    ({"user": "not-an-email"}, "org.users[1].email", ["not a valid e-mail address"]),
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


def test_a_gateway_rejected_card_is_not_a_scenario_error(tmp_path, monkeypatch):
    """4000000000000002 is a well-formed test card the gateway refuses when it is set: at run
    time that is an `action_rejected` event, so the file itself is valid."""
    from domain.catalog import load_catalog
    from domain.policy import Policy
    from workers.simulate_scenario import load_scenario
    path = scenario(tmp_path, actions="  - {at: P1D, do: update_card, card: '4000000000000002'}")
    parsed = load_scenario(path, load_catalog(), Policy())
    [action] = parsed.actions
    assert action.request is None
    assert action.rejection == "card ending 0002 was rejected by the gateway; the previous card stays in place"


def test_scenario_parsing_keeps_file_order_at_the_same_instant(tmp_path):
    from domain.catalog import load_catalog
    from domain.policy import Policy
    from workers.simulate_scenario import load_scenario
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
