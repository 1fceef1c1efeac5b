"""Issue 22's money cases, run as a new user would: through `billing simulate` (real workflows,
database, SMTP). Amounts worked out by hand from domain/catalog.yaml, by days (DOMAIN.md)."""

from pathlib import Path

import pytest

from tests.simulate.conftest import at, events, simulate

CASES = Path(__file__).resolve().parent / "unbilled"


@pytest.fixture(scope="module")
def runs():
    cache: dict[str, dict] = {}

    def doc(name: str) -> dict:
        if name not in cache:
            [path] = CASES.glob(f"{name}-*.yaml")
            cache[name] = simulate(path, "--json").doc
        return cache[name]
    return doc


def charges(doc) -> list[tuple[str, int, str]]:
    return [(e["at"], e["amount"], e["outcome"]) for e in events(doc, "charge")]


def test_1_a_credit_note_is_kept_as_credit_and_used_by_the_next_invoices(runs):
    doc = runs("1")
    # Feb 4: a year of Mail Lite 5 ($10.00) less February's unused 25 of 28 days of the licence ($0.89)
    # and of premium support Enhanced ($144.64 for 27 days, 25 unused: $133.93): -$124.82.
    [switch] = events(doc, "invoice", kind="cycle_switch")
    assert (switch["at"], switch["total"]) == (at("2026-02-04 09:00"), 1000 - 89 - 13393)
    assert events(doc, "invoice", number=switch["number"], status="credited") != []
    # The credit note is e-mailed as one, not as a payment receipt: nothing was paid.
    assert [e["at"] for e in events(doc, "email", template="credit_note")] == [at("2026-02-04 09:00")]
    assert [e for e in events(doc, "email", template="receipt") if e["at"] == at("2026-02-04 09:00")] == []
    # Feb 11: a 25 GB unit for 358 of 365 days ($39.23), all from the credit; Feb 21: Essentials for
    # 348 days ($476.71), $85.59 from what is left of the credit, the card pays $391.12.
    assert [(e["at"], e["total"], e["credit_applied"]) for e in events(doc, "invoice", status="open")
            if "credit_applied" in e] == [(at("2026-02-11 09:00"), 0, 3923), (at("2026-02-21 09:00"), 39112, 8559)]
    assert charges(doc) == [(at("2026-02-02 09:00"), 14464, "succeeded"), (at("2026-02-21 09:00"), 39112, "succeeded")]
    assert doc["final"]["credit"] == 0 and doc["final"]["cycle"] == "yearly"


def test_2_an_escalated_org_is_invoiced_on_each_renewal_date_and_a_downgrade_writes_them_all_off(runs):
    doc = runs("2")
    # 3 Standard licences ($9.00) a cycle: April's declined through the ladder, escalated on Apr 8,
    # then May and June invoiced on their dates, each charged once, left unpaid for staff.
    assert [(e["at"], e["number"][-4:]) for e in events(doc, "invoice", status="open")] == [
        (at("2026-04-01 09:00"), "0001"), (at("2026-05-01 09:00"), "0002"), (at("2026-06-01 09:00"), "0003")]
    assert [(e["at"], e["invoice"][-4:], e["outcome"]) for e in events(doc, "charge")][-2:] == [
        (at("2026-05-01 09:00"), "0002", "declined"), (at("2026-06-01 09:00"), "0003", "declined")]
    assert [e["at"] for e in events(doc, "dunning", event="cycle_unpaid")] == [at("2026-05-01 09:00"),
                                                                              at("2026-06-01 09:00")]
    assert [(e["at"], e["status"]) for e in events(doc, "status")][-2:] == [
        (at("2026-04-08 09:00"), "escalated"), (at("2026-06-04 09:00"), "free")]
    # Staff downgrade: every served cycle written off, none voided.
    assert [(e["at"], e["number"][-4:]) for e in events(doc, "invoice", status="uncollectible")] == [
        (at("2026-06-04 09:00"), "0001"), (at("2026-06-04 09:00"), "0002"), (at("2026-06-04 09:00"), "0003")]
    assert events(doc, "invoice", status="void") == []


def test_2b_cancelling_an_escalated_org_writes_off_every_served_cycle_and_voids_none(runs):
    doc = runs("3")
    assert [(e["at"], e["number"][-4:]) for e in events(doc, "invoice", status="uncollectible")] == [
        (at("2026-06-04 09:00"), "0001"), (at("2026-06-04 09:00"), "0002"), (at("2026-06-04 09:00"), "0003")]
    assert events(doc, "invoice", status="void") == []
    assert [(e["at"], e["status"]) for e in events(doc, "status")][-1] == (at("2026-06-04 09:00"), "free")


def test_2c_an_escalated_org_that_pays_settles_its_cycles_oldest_first_one_receipt_each(runs):
    doc = runs("4")
    paid_at = at("2026-06-04 09:00")
    settled = [e for e in doc["events"] if e["at"] == paid_at and e["type"] in ("charge", "invoice", "email")]
    assert [(e["type"], e.get("invoice") or e.get("number") or e["template"]) for e in settled] == [
        step for number in ("INV-unbilled4-0001", "INV-unbilled4-0002", "INV-unbilled4-0003")
        for step in (("charge", number), ("invoice", number), ("email", "receipt"))]
    assert doc["final"]["status"] == "active" and doc["final"]["open_invoice"] is None


def test_2d_a_grace_extended_by_staff_is_recorded_with_its_days_and_its_end(runs):
    doc = runs("5")
    assert events(doc, "grace_extended") == [{"at": at("2026-06-04 09:00"), "type": "grace_extended", "extend_days": 12,
                                              "retry_at": at("2026-06-16 09:00"), "by": "rina@billing.test"}]


def test_2e_the_retry_after_an_extended_grace_charges_oldest_first_then_escalates_again(runs):
    doc = runs("6")
    retry_at = at("2026-06-07 09:00")
    timeline = [(e["type"], e.get("invoice") or e.get("status")) for e in doc["events"]
                if e["at"] == retry_at and e["type"] in ("charge", "status")]
    assert timeline == [("charge", f"INV-unbilled6-000{n}") for n in (1, 2, 3)] + [("status", "escalated")]
    assert [e["outcome"] for e in events(doc, "charge") if e["at"] == retry_at] == ["declined"] * 3
    assert doc["final"]["status"] == "escalated" and doc["final"]["open_invoice"] == "INV-unbilled6-0001"


def test_3_an_org_starting_on_a_paid_plan_is_an_existing_customer_moved_in(runs):
    """SIMULATE.md: paid through `start` plus one cycle, no charge at `start`; the timeline says so."""
    doc = runs("2")
    [moved_in] = events(doc, "moved_in")
    assert moved_in == {"at": at("2026-03-01 09:00"), "type": "moved_in", "paid_through": at("2026-04-01 09:00"),
                        "by": "billing simulate"}
    assert [e for e in doc["events"] if e["type"] in ("charge", "invoice") and e["at"] < at("2026-04-01 09:00")] == []
