"""Every example scenario runs through `billing simulate --json`; its key events are checked
against amounts computed by hand from domain/catalog.yaml (per licence and month: Standard
$3.00 / Rp45.000, Professional $6.00, Mail Premium $4.00; storage 25 GB $4.00, 5 GB $1.00).

Pro rata: the full-cycle amount times the share of the period left, rounded half up."""

from pathlib import Path

import pytest

from tests.simulate.conftest import EXAMPLES, at, brief, events

REQUIRED_TYPES = {"email", "charge", "invoice", "plan_changed", "status", "user_blocked", "user_unblocked",
                  "action_rejected", "escalated", "entitlements"}
REQUIRED_TEMPLATES = {"trial_ending", "trial_expired", "receipt", "payment_failed", "plan_changed",
                      "storage_blocked", "downgrade_scheduled"}
ALL_EXAMPLES = sorted(p.stem for p in EXAMPLES.glob("*.yaml"))


def test_there_are_examples_for_every_story():
    assert {"trial-to-free", "trial-to-paid", "dunning-to-free", "dunning-recovered", "scheduled-downgrade",
            "cancellation", "large-account-escalation"} <= set(ALL_EXAMPLES)


@pytest.mark.parametrize("name", ALL_EXAMPLES)
def test_example_runs_and_keeps_the_contract(examples, name):
    doc = examples.doc(name)
    assert set(doc) == {"org", "events", "final"}
    assert {"plan", "status", "cycle", "renews_at", "licences", "blocked_users"} <= set(doc["final"])
    times = [e["at"] for e in doc["events"]]
    assert times == sorted(times), "events are in time order"
    for event in doc["events"]:
        assert event["at"].endswith("+00:00") and len(event["at"]) == 25
        if event["type"] in ("charge", "invoice"):
            amount = event["amount"] if event["type"] == "charge" else event["total"]
            assert isinstance(amount, int) and not isinstance(amount, bool)


def test_all_examples_together_show_every_required_event_and_template(examples):
    seen_types, seen_templates = set(), set()
    for name in ALL_EXAMPLES:
        doc = examples.doc(name)
        seen_types |= {e["type"] for e in doc["events"]}
        seen_templates |= {e["template"] for e in events(doc, "email")}
    assert REQUIRED_TYPES <= seen_types
    assert REQUIRED_TEMPLATES <= seen_templates


def test_trial_to_free(examples):
    doc = examples.doc("trial-to-free")
    assert doc["org"] == "kopi"
    assert brief(doc, "email", "plan_changed", "status", "user_blocked", "user_unblocked") == [
        ("2026-01-31 09:00", "status", "trialing"),
        ("2026-02-12 09:00", "email", "trial_ending"),         # 3 days before the end
        ("2026-02-14 09:00", "email", "trial_ending"),         # 1 day before
        ("2026-02-15 09:00", "plan_changed", "free"),
        ("2026-02-15 09:00", "status", "free"),
        ("2026-02-15 09:00", "user_blocked", "b@kopi.test"),   # 12 GB > 5 GB
        ("2026-02-15 09:00", "email", "trial_expired"),
        ("2026-02-15 09:00", "email", "storage_blocked"),      # to the admin
        ("2026-02-15 09:00", "email", "storage_blocked"),      # and to the blocked user
        ("2026-02-18 09:00", "user_unblocked", "b@kopi.test"),
        ("2026-02-18 09:00", "email", "user_unblocked"),
    ]
    assert events(doc, "plan_changed") == [{"at": at("2026-02-15 09:00"), "type": "plan_changed",
                                            "from": "professional", "to": "free", "reason": "trial_expired"}]
    assert events(doc, "user_blocked")[0]["reason"] == "storage"
    assert [e["to"] for e in events(doc, "email", template="storage_blocked")] == ["admin@kopi.test", "b@kopi.test"]
    assert [e["to"] for e in events(doc, "email", template="trial_ending")] == ["admin@kopi.test"] * 2
    assert events(doc, "charge") == [] and events(doc, "invoice") == []
    assert doc["final"] == {**doc["final"], "plan": "free", "status": "free", "cycle": None, "renews_at": None,
                            "blocked_users": [], "users": 4}
    # The mail platform is told: the trial at its start, the block at its end, the new user, the
    # unblock; the reminders change nothing it is told.
    assert [(e["at"], e["version"], e["plan"], e["status"], e["blocked_users"])
            for e in events(doc, "entitlements")] == [
        (at("2026-01-31 09:00"), 1, "professional", "trialing", []),
        (at("2026-02-15 09:00"), 2, "free", "free", ["b@kopi.test"]),
        (at("2026-02-16 09:00"), 3, "free", "free", ["b@kopi.test"]),
        (at("2026-02-18 09:00"), 4, "free", "free", [])]


def test_trial_to_paid_in_rupiah(examples):
    doc = examples.doc("trial-to-paid")
    assert [(e["at"], e["total"], e["status"], e.get("kind")) for e in events(doc, "invoice")] == [
        (at("2026-03-16 02:00"), 135000, "open", "trial_conversion"),   # 3 x Rp45.000
        (at("2026-03-16 02:00"), 135000, "paid", None),
        (at("2026-04-01 02:00"), 21774, "open", "proration"),           # Rp45.000 x 15/31 days
        (at("2026-04-01 02:00"), 21774, "paid", None),
        (at("2026-04-16 02:00"), 180000, "open", "renewal"),            # 4 x Rp45.000
        (at("2026-04-16 02:00"), 180000, "paid", None),
    ]
    assert all(e["currency"] == "IDR" for e in events(doc, "invoice") + events(doc, "charge"))
    assert [(e["at"], e["amount"], e["outcome"]) for e in events(doc, "charge")] == [
        (at("2026-03-16 02:00"), 135000, "succeeded"),
        (at("2026-04-01 02:00"), 21774, "succeeded"),
        (at("2026-04-16 02:00"), 180000, "succeeded"),
    ]
    assert events(doc, "plan_changed") == [{"at": at("2026-03-16 02:00"), "type": "plan_changed",
                                            "from": "professional", "to": "standard", "reason": "trial_converted"}]
    assert [(e["at"], e["template"]) for e in events(doc, "email")] == [
        (at("2026-03-13 02:00"), "trial_ending"),
        (at("2026-03-15 02:00"), "trial_ending"),
        (at("2026-03-16 02:00"), "plan_changed"),
        (at("2026-03-16 02:00"), "receipt"),
        (at("2026-04-01 02:00"), "receipt"),
        (at("2026-04-16 02:00"), "receipt"),
    ]
    final = doc["final"]
    assert (final["plan"], final["status"], final["cycle"], final["licences"], final["renews_at"]) == (
        "standard", "active", "monthly", 4, at("2026-05-16 02:00"))


def test_dunning_to_free(examples):
    doc = examples.doc("dunning-to-free")
    # Renewal on the anniversary day (Jan 31 -> Feb 28), then retries 1, 3, 5 and 7 days later.
    assert [(e["at"], e["amount"], e["currency"], e["outcome"], e["reason"]) for e in events(doc, "charge")] == [
        (at(day), 900, "USD", "declined", "card_declined")
        for day in ("2026-02-28 09:00", "2026-03-01 09:00", "2026-03-03 09:00", "2026-03-05 09:00",
                    "2026-03-07 09:00")]
    assert [(e["at"], e["status"]) for e in events(doc, "status")] == [
        (at("2026-01-31 09:00"), "active"), (at("2026-02-28 09:00"), "past_due"), (at("2026-03-07 09:00"), "free")]
    assert [(e["at"], e["number"], e["total"], e["status"]) for e in events(doc, "invoice")] == [
        (at("2026-02-28 09:00"), "INV-initech-0001", 900, "open"),
        (at("2026-03-07 09:00"), "INV-initech-0001", 900, "uncollectible"),
    ]
    assert events(doc, "plan_changed") == [{"at": at("2026-03-07 09:00"), "type": "plan_changed",
                                            "from": "standard", "to": "free", "reason": "payment_failed"}]
    assert [e["at"] for e in events(doc, "email", template="payment_failed")] == [
        at(day) for day in ("2026-02-28 09:00", "2026-03-01 09:00", "2026-03-03 09:00", "2026-03-05 09:00",
                            "2026-03-07 09:00")]
    assert [e["at"] for e in events(doc, "email", template="plan_changed")] == [at("2026-03-07 09:00")]
    assert events(doc, "user_blocked") == [{"at": at("2026-03-07 09:00"), "type": "user_blocked",
                                            "user": "b@initech.test", "reason": "storage"}]
    [rejected] = events(doc, "action_rejected")
    assert rejected["at"] == at("2026-03-02 09:00") and rejected["action"] == "add_licences"
    assert rejected["error"] == ("cannot add licences: the org is past_due on invoice INV-initech-0001; "
                                 "the open invoice must be paid first")
    assert doc["final"] == {**doc["final"], "plan": "free", "status": "free", "cycle": None, "renews_at": None,
                            "licences": 3, "blocked_users": ["b@initech.test"]}


def test_dunning_recovered_by_a_card_update(examples):
    doc = examples.doc("dunning-recovered")
    assert [(e["at"], e["amount"], e["outcome"], e["reason"], e["attempt"]) for e in events(doc, "charge")] == [
        (at("2026-02-28 09:00"), 800, "declined", "insufficient_funds", 1),   # 2 x $4.00
        (at("2026-03-01 09:00"), 800, "declined", "insufficient_funds", 2),   # scheduled retry
        (at("2026-03-01 21:00"), 800, "declined", "insufficient_funds", 3),   # staff retry
        (at("2026-03-02 09:00"), 800, "succeeded", None, 4),                  # the new card
        (at("2026-03-31 09:00"), 800, "succeeded", None, 1),                  # next renewal
    ]
    assert [(e["at"], e["status"]) for e in events(doc, "status")] == [
        (at("2026-01-31 09:00"), "active"), (at("2026-02-28 09:00"), "past_due"), (at("2026-03-02 09:00"), "active")]
    assert [(e["at"], e["template"]) for e in events(doc, "email")] == [
        (at("2026-02-28 09:00"), "payment_failed"), (at("2026-03-01 09:00"), "payment_failed"),
        (at("2026-03-01 21:00"), "payment_failed"), (at("2026-03-02 09:00"), "receipt"),
        (at("2026-03-31 09:00"), "receipt")]
    assert events(doc, "plan_changed") == [] and events(doc, "action_rejected") == []
    final = doc["final"]
    assert (final["plan"], final["status"], final["renews_at"]) == ("mail_premium", "active", at("2026-04-30 09:00"))


def test_scheduled_downgrade(examples):
    doc = examples.doc("scheduled-downgrade")
    rejected = events(doc, "action_rejected")
    assert [(e["at"], e["action"], e["error"]) for e in rejected] == [
        (at("2026-02-20 09:00"), "request_downgrade",
         "downgrades are accepted only 15 to 30 days before the renewal date (2026-02-28); it is 8 days away"),
        (at("2026-03-06 09:00"), "request_downgrade",
         "only billing staff may request a downgrade; admin@hooli.test is not billing staff"),
    ]
    assert events(doc, "action", action="request_downgrade") == [{
        "at": at("2026-03-07 09:00"), "type": "action", "action": "request_downgrade", "plan": "standard",
        "requested_by": "rina@billing.test", "reason": "budget"}]
    assert [(e["at"], e["to"]) for e in events(doc, "email", template="downgrade_scheduled")] == [
        (at("2026-03-07 09:00"), "admin@hooli.test")]
    assert events(doc, "plan_changed") == [{"at": at("2026-03-31 09:00"), "type": "plan_changed",
                                            "from": "professional", "to": "standard", "reason": "downgrade"}]
    assert [(e["at"], e["total"], e["status"]) for e in events(doc, "invoice")] == [
        (at("2026-02-28 09:00"), 1800, "open"), (at("2026-02-28 09:00"), 1800, "paid"),   # 3 x $6.00
        (at("2026-03-31 09:00"), 900, "open"), (at("2026-03-31 09:00"), 900, "paid"),     # 3 x $3.00
    ]
    assert events(doc, "user_blocked") == [{"at": at("2026-03-31 09:00"), "type": "user_blocked",
                                            "user": "b@hooli.test", "reason": "storage"}]   # 40 GB > 30 GB
    assert "plan_changed" in [e["template"] for e in events(doc, "email") if e["at"] == at("2026-03-31 09:00")]
    assert doc["final"]["plan"] == "standard" and doc["final"]["renews_at"] == at("2026-04-30 09:00")


def test_cancellation(examples):
    doc = examples.doc("cancellation")
    assert brief(doc, "status", "plan_changed", "action_rejected", "user_blocked", "email") == [
        ("2026-05-15 12:00", "status", "active"),
        ("2026-05-25 12:00", "status", "cancelling"),
        ("2026-05-25 12:00", "email", "cancellation_scheduled"),
        ("2026-05-27 12:00", "action_rejected", "add_licences"),
        ("2026-06-15 12:00", "plan_changed", "free"),
        ("2026-06-15 12:00", "status", "free"),
        ("2026-06-15 12:00", "user_blocked", "b@umbrella.test"),  # with the plan change, in its transaction
        ("2026-06-15 12:00", "email", "plan_changed"),
        ("2026-06-15 12:00", "email", "storage_blocked"),
        ("2026-06-15 12:00", "email", "storage_blocked"),
    ]
    assert events(doc, "plan_changed")[0]["reason"] == "cancelled"
    assert events(doc, "action_rejected")[0]["error"] == (
        "cannot add licences: the subscription is cancelled and ends on 2026-06-15; undo the cancellation first")
    assert events(doc, "charge") == [] and events(doc, "invoice") == []   # no charge for the cancelled cycle
    assert doc["final"]["status"] == "free" and doc["final"]["blocked_users"] == ["b@umbrella.test"]


def test_large_account_is_escalated_not_downgraded(examples):
    doc = examples.doc("large-account-escalation")
    charges = events(doc, "charge")
    assert [(e["at"], e["amount"], e["outcome"]) for e in charges] == [
        (at(day), 36000, "declined")                                  # 120 licences x $3.00
        for day in ("2026-02-28 09:00", "2026-03-01 09:00", "2026-03-03 09:00", "2026-03-05 09:00",
                    "2026-03-07 09:00")] + [(at("2026-03-09 09:00"), 36000, "succeeded")]
    assert events(doc, "escalated") == [{
        "at": at("2026-03-07 09:00"), "type": "escalated", "severity": "S1", "reason": "payment_failed",
        "invoice": "INV-megacorp-0001", "first_response_due": at("2026-03-07 12:00"),
        "determination_due": at("2026-03-07 17:00")}]
    assert [(e["at"], e["status"]) for e in events(doc, "status")] == [
        (at("2026-01-31 09:00"), "active"), (at("2026-02-28 09:00"), "past_due"),
        (at("2026-03-07 09:00"), "escalated"), (at("2026-03-09 09:00"), "active")]
    assert events(doc, "plan_changed") == [] and events(doc, "user_blocked") == []
    assert [(e["at"], e["to"]) for e in events(doc, "email", template="escalation")] == [
        (at("2026-03-07 09:00"), "billing-staff@localhost")]
    assert doc["final"] == {**doc["final"], "plan": "standard", "status": "active", "licences": 120,
                            "renews_at": at("2026-03-31 09:00")}


def test_storage_and_licences_pro_rata(examples):
    doc = examples.doc("storage-and-licences")
    assert [(e["at"], e["total"], e.get("kind")) for e in events(doc, "invoice", status="open")] == [
        (at("2026-01-11 00:00"), 203, "proration"),    # $3.00 x 21/31
        (at("2026-01-13 00:00"), 245, "proration"),    # $4.00 x 19/31
        (at("2026-01-14 00:00"), 58, "proration"),     # $1.00 x 18/31
        (at("2026-02-01 00:00"), 1400, "renewal"),     # 3 x $3.00 + $4.00 + $1.00
        (at("2026-02-05 00:00"), 12800, "cycle_switch"),  # 3 x $30 + $40 + $10 - $14.00 x 24/28 unused
    ]
    assert brief(doc, "user_blocked", "user_unblocked", "storage_auto_allocated") == [
        ("2026-01-12 00:00", "user_blocked", "b@acme.test"),
        ("2026-01-13 00:00", "storage_auto_allocated", "b@acme.test"),     # bought while b@ was blocked
        ("2026-01-13 00:00", "user_unblocked", "b@acme.test"),
        ("2026-01-15 00:00", "storage_auto_allocated", "c@acme.test"),
    ]
    final = doc["final"]
    assert (final["cycle"], final["renews_at"], final["licences"], final["users"]) == (
        "yearly", at("2027-02-05 00:00"), 3, 3)


def test_usage_reports_block_and_unblock_each_user_and_a_late_or_repeated_one_changes_nothing(examples):
    """Issue 22's reproduction through the usage feed's signal (wile, road, wile), then reports
    carrying their own time and id: one measured before what was applied, one sent twice."""
    doc = examples.doc("usage-reports")
    assert brief(doc, "user_blocked", "user_unblocked") == [
        ("2026-02-01 09:00", "user_blocked", "wile@looney.test"),
        ("2026-02-02 09:00", "user_blocked", "road@looney.test"),
        ("2026-02-03 09:00", "user_unblocked", "wile@looney.test"),
        ("2026-02-04 09:00", "user_unblocked", "road@looney.test"),   # 250 GB of P1DT12H and the repeat: nothing
    ]
    assert [(e["at"], e["to"]) for e in events(doc, "email", template="storage_blocked")] == [
        (at("2026-02-01 09:00"), "admin@looney.test"), (at("2026-02-01 09:00"), "wile@looney.test"),
        (at("2026-02-02 09:00"), "admin@looney.test"), (at("2026-02-02 09:00"), "road@looney.test")]
    assert len(events(doc, "email", template="user_unblocked")) == 2
    assert not events(doc, "action_rejected")
    assert doc["final"]["blocked_users"] == []
    assert doc["final"]["contacts"] == {"tier": 2000, "subscribed": 1800, "awaiting_upgrade": 0}  # not 2,600


def test_two_runs_of_a_scenario_give_identical_timelines(examples):
    name = "dunning-recovered"
    first = examples.run(name)
    from tests.simulate.conftest import simulate
    second = simulate(EXAMPLES / f"{name}.yaml", "--json")
    assert second.exit_code == 0, second.stderr
    assert second.stdout == first.stdout


def test_examples_are_plain_files_in_the_repository():
    for name in ALL_EXAMPLES:
        text = (EXAMPLES / f"{name}.yaml").read_text(encoding="utf-8")
        assert text.startswith("#"), f"{name}.yaml starts with a comment saying what it shows"
        assert Path(EXAMPLES / f"{name}.yaml").stat().st_size < 4000
