"""Differential test: seeded random sequences of requests run through the pure model
(tests/support/model.py: the domain's decisions, persisted in memory) and through
`billing simulate` (the real workflow, database and SMTP). Both must agree on every charge (amount,
instant, outcome), every plan change, every refusal, who is blocked and the final state.

A disagreement prints the seed; `DIFFERENTIAL_SEEDS=a-b` runs another range."""

import os
import random
from collections import Counter
from datetime import datetime

import pytest
import yaml
from dateutil.relativedelta import relativedelta

from domain.catalog import load_catalog
from domain.onboarding import NewOrg, NewUser, paid_for_one_cycle, validate_new_org
from domain.operations import OPERATIONS
from domain.policy import Policy
from domain.requests import Kind
from tests.simulate.conftest import simulate
from tests.support.model import OrgModel
from workers.simulate.scenario import ACTION_FIELDS

CATALOG = load_catalog()
START = "2026-01-31T09:00:00+00:00"
CARDS = ["4242424242424242", "4242424242424242", "4000000000000341", "4000000000009995"]
PAID = ["mail_lite_5", "mail_lite_10", "mail_premium", "standard", "professional"]
LARGE = 6   # a low large-account threshold, so escalations happen too


def _seeds() -> list[int]:
    low, _, high = os.environ.get("DIFFERENTIAL_SEEDS", "1-24").partition("-")
    return list(range(int(low), int(high or low) + 1))


def scenario(seed: int) -> dict:
    """A random but well-formed scenario: an org and a dozen requests over about four months."""
    rng = random.Random(seed)
    plan = rng.choice(["trial", "trial", "free", "standard", "mail_lite_10", "professional"])
    people = [f"u{i}@r{seed}.test" for i in range(1, rng.randint(1, 4))]
    org = {"id": f"r{seed}", "admin_email": f"admin@r{seed}.test", "plan": plan,
           "users": [{"email": e, "storage_gb": rng.choice([1, 4, 6, 12, 40])} for e in people],
           "auto_allocate_storage": rng.random() < 0.3}
    if plan not in ("trial", "free"):
        org["cycle"] = rng.choice(["monthly", "monthly", "yearly"])
    if rng.random() < 0.7:
        org["card"] = rng.choice(CARDS)
    everyone = [org["admin_email"], *people]
    actions, hours = [], 0
    for _ in range(rng.randint(8, 16)):
        hours += rng.choice([0, 3, 12, 24, 48, 72, 120, 192, 312, 504])
        name, fields = _request(rng, everyone, seed)
        everyone += [fields["email"]] if name == "add_user" else []
        if name in ("set_usage", "set_contacts"):
            fields |= _report(rng, hours)
        actions.append({"at": f"P{hours // 24}DT{hours % 24}H", "do": name, **fields})
    # Operations added since the seeds were chosen are drawn apart (the sequences above stay those
    # the seeds always gave): the setting turned on or off now and then, between two steps.
    later = random.Random(f"later-{seed}")
    if actions and later.random() < 0.6:
        step = later.randrange(len(actions))
        actions.insert(step, {"at": actions[step]["at"], "do": "auto_allocate",
                              "setting": later.choice(["on", "off"]), "requested_by": everyone[0]})
    # The run ends between steps (they fall on whole 3-hour marks): a cycle started by a paid change
    # starts a few milliseconds after its mark in the real stack, so a renewal due at `until` exactly
    # would run in the model and not there.
    return {"start": START, "until": f"P{hours // 24 + 40}DT1H", "policy": {"large_account_licences": LARGE},
            "org": org, "actions": actions}


LATER = ("auto_allocate",)


def _request(rng: random.Random, everyone: list[str], seed: int) -> tuple[str, dict]:
    name = rng.choice(sorted(name for name, op in OPERATIONS.items() if op.generated and name not in LATER))
    someone = rng.choice(everyone)
    staff = {"requested_by": "rina@billing.test", "reason": "call"}
    fields = {
        "upgrade": lambda: {"plan": rng.choice(PAID), "cycle": rng.choice(["monthly", "yearly"])},
        "add_licences": lambda: {"count": rng.randint(1, 3)},
        "add_user": lambda: {"email": f"n{rng.randint(1, 99)}@r{seed}.test", "storage_gb": rng.choice([0, 3, 7, 45])},
        "buy_storage": lambda: {"unit_gb": rng.choice([5, 25]), "count": rng.randint(1, 2)},
        "remove_storage": lambda: {"unit_gb": rng.choice([5, 25]), "count": 1},
        "allocate_storage": lambda: {"user": someone, "unit_gb": rng.choice([5, 25])},
        "set_usage": lambda: {"user": someone, "storage_gb": rng.choice([0, 2, 6, 11, 35, 60])},
        "buy_addon": lambda: {"addon": rng.choice(["support_essentials", "support_enhanced"])},
        "remove_addon": lambda: {"addon": rng.choice(["support_essentials", "support_enhanced"])},
        "change_tier": lambda: {"contacts": rng.choice([1000, 2000, 3000, 5000])},
        "set_contacts": lambda: {"contacts": rng.choice([0, 800, 1500, 2500, 3200, 5100])},
        "switch_to_yearly": lambda: {},
        "switch_to_monthly": lambda: {},
        "cancel_switch_to_monthly": lambda: {},
        "update_card": lambda: {"card": rng.choice(CARDS)},
        "request_downgrade": lambda: {"plan": rng.choice(PAID), "licences": rng.choice([None, 1, 2, 3, 4]), **staff},
        "cancel_downgrade": lambda: staff,
        "cancel": lambda: {"requested_by": everyone[0]},
        "undo_cancel": lambda: {"requested_by": everyone[0]},
        "retry_payment": lambda: staff,
        "resolve_escalation": lambda: {"action": rng.choice(["extend", "downgrade", "retry"]), **staff},
    }[name]()
    return name, {k: v for k, v in fields.items() if v is not None}


def _report(rng: random.Random, hours: int) -> dict:
    """A report as a usage feed may send it: as the signal, with its own id and time (measured
    hours before it is sent), and now and then the same report again."""
    fields = {}
    if rng.random() < 0.4:
        fields["via"] = "signal"
    if rng.random() < 0.4:
        earlier = max(0, hours - rng.choice([1, 5, 30]))
        fields |= {"report_id": f"m{rng.choice([1, 2, 3])}-{earlier}", "reported_at": f"P{earlier // 24}DT{earlier % 24}H"}
    return fields


def through_the_model(doc: dict) -> OrgModel:
    start = datetime.fromisoformat(doc["start"])
    spec = doc["org"]
    org = validate_new_org(NewOrg(id=spec["id"], name=spec["id"], admin_email=spec["admin_email"], plan=spec["plan"],
                                  cycle=spec.get("cycle"), auto_allocate_storage=spec["auto_allocate_storage"],
                                  users=[NewUser(u["email"], u["storage_gb"]) for u in spec["users"]]), CATALOG)
    from domain.cards import sandbox_tokenise
    card = sandbox_tokenise(spec["card"]) if "card" in spec else None
    # SIMULATE.md: an org starting on a paid plan was paid through start plus one cycle.
    model = OrgModel(paid_for_one_cycle(org, start, "billing simulate"), start, Policy(billing_staff=None, large_account_licences=LARGE), CATALOG,
                     card.token if card else None, card_last4=card.last4 if card else None)
    for action in doc["actions"]:
        model.advance_to(start + _duration(action["at"]))
        operation = OPERATIONS[action["do"]]
        values = {name: _instant(start, action[name]) if kind == Kind.INSTANT and action.get(name) else
                  action.get(name, default) for name, (kind, default) in ACTION_FIELDS[action["do"]].items()}
        try:
            request = operation.request_from_input(values)
        except Exception as err:  # noqa: BLE001 (a gateway-rejected card: refused before the workflow)
            model.rejections.append((model.now, action["do"], getattr(err, "message", str(err))))
            continue
        # A signal is never answered: a report it drops shows no refusal.
        model.request(action["do"], request, answered=action.get("via") != "signal")
    model.advance_to(start + _duration(doc["until"]))
    return model


def _duration(text: str) -> relativedelta:
    from workers.simulate.fields import parse_duration
    return parse_duration(text, "at")


def _instant(start: datetime, duration: str) -> str:
    return (start + _duration(duration)).isoformat()


def _iso(moment: datetime) -> str:
    return moment.replace(microsecond=0).isoformat()


@pytest.mark.parametrize("seed", _seeds())
def test_the_model_and_the_real_stack_agree(seed, tmp_path):
    doc = scenario(seed)
    path = tmp_path / "scenario.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    real = simulate(path, "--json").doc
    model = through_the_model(doc)
    where = f"seed {seed} ({path}):\n{yaml.safe_dump(doc, sort_keys=False)}"

    charges = [(e["at"], e["amount"], e["outcome"]) for e in real["events"] if e["type"] == "charge"]
    assert charges == [(_iso(c.at), c.amount, c.outcome) for c in model.charges], where
    plan_changes = [(e["at"], e["from"], e["to"], e["reason"]) for e in real["events"] if e["type"] == "plan_changed"]
    assert plan_changes == [(_iso(e.at), e.data["from"], e.data["to"], e.data["reason"])
                            for e in model.events if e.type == "plan_changed"], where
    refusals = [(e["at"], e["action"], e["error"]) for e in real["events"] if e["type"] == "action_rejected"]
    assert refusals == [(_iso(at), name, message) for at, name, message in model.rejections], where
    blocked = [(e["at"], e["user"]) for e in real["events"] if e["type"] == "user_blocked"]
    assert blocked == [(_iso(e.at), e.data["user"]) for e in model.events if e.type == "user_blocked"], where
    emails = Counter((e["at"], e["template"], e["to"]) for e in real["events"] if e["type"] == "email")
    assert emails == Counter((_iso(at), template, to) for at, template, to in model.emails), where
    final = model.final()
    final["renews_at"] = _iso(final["renews_at"]) if final["renews_at"] else None
    assert {key: real["final"][key] for key in final} == final, where


def test_the_sequences_are_varied_enough_to_mean_something():
    """Across the seeds (read through the model): every operation is asked for, and charges,
    declines, refusals, plan changes and blocked users all happen."""
    docs = [scenario(seed) for seed in _seeds()]
    assert len(docs) >= 20
    assert {action["do"] for doc in docs for action in doc["actions"]} == {n for n, op in OPERATIONS.items() if op.generated}
    models = [through_the_model(doc) for doc in docs]
    outcomes = Counter(charge.outcome for model in models for charge in model.charges)
    reasons = Counter(e.data["reason"] for model in models for e in model.events if e.type == "plan_changed")
    assert outcomes["succeeded"] >= 20 and outcomes["declined"] >= 5, outcomes
    assert sum(len(model.rejections) for model in models) >= 20
    assert {"upgrade", "trial_expired", "cancelled"} <= set(reasons), reasons
    assert any(e.type == "user_blocked" for model in models for e in model.events)
