"""Billing derived from holdings (domain.billing.charges): what is due for each item over the
days left of a period, less what the ledger says was already billed for it. Amounts are worked
out by hand from domain/catalog.yaml (USD per month: Standard $3.00, Professional $6.00, storage
5 GB $1.00, 25 GB $4.00, tier $5.00 per 1,000 contacts, Essentials $50.00; yearly x10)."""

import pytest
from dateutil.relativedelta import relativedelta

from domain.billing import charges, total
from domain.catalog import load_catalog
from domain.states import Cycle
from domain.subscription import Item
from tests.domain.builders import utc

APR, MAY = utc(2027, 4, 1, 9), utc(2027, 5, 1, 9)    # 30 days
STANDARD, PRO = Item.licence("standard"), Item.licence("professional")
FULL = {STANDARD: 6, Item.storage(25): 2, Item.storage(5): 1, Item.tier("campaigns_contacts"): 3,
        Item.addon("support_essentials"): 1}


@pytest.fixture(scope="module")
def catalog():
    return load_catalog()


def month(catalog, held, since=APR, ledger=(), currency="USD"):
    return charges(catalog, currency, Cycle.MONTHLY, (APR, MAY), since, held, list(ledger))


def test_a_whole_period_bills_every_item_in_full_in_invoice_order(catalog):
    lines = month(catalog, FULL)
    assert [(l.description, l.quantity, l.unit_amount, l.amount) for l in lines] == [
        ("Workplace Standard licence (monthly)", 6, 300, 1800),
        ("Storage unit 5 GB (monthly)", 1, 100, 100),
        ("Storage unit 25 GB (monthly)", 2, 400, 800),
        ("Campaigns subscribers, per 1,000 contacts (monthly)", 3, 500, 1500),
        ("Premium support Essentials (monthly)", 1, 5000, 5000),
    ]
    assert total(lines) == 9200
    assert all((l.start, l.end) == (APR, MAY) for l in lines)


def test_yearly_and_rupiah_prices(catalog):
    year = charges(catalog, "USD", Cycle.YEARLY, (APR, APR + relativedelta(years=1)), APR, FULL, [])
    assert [l.amount for l in year] == [18000, 1000, 8000, 15000, 50000]
    # 6 x 45000 + 15000 + 2 x 60000 + 3 x 75000 + 750000
    assert [l.amount for l in month(catalog, FULL, currency="IDR")] == [270000, 15000, 120000, 225000, 750000]


def test_a_purchase_mid_cycle_bills_only_what_is_added_for_the_days_left(catalog):
    billed = [line.span("INV-1") for line in month(catalog, {STANDARD: 5})]
    lines = month(catalog, {STANDARD: 7}, since=utc(2027, 4, 16, 14), ledger=billed)
    # 2 x 300 x 15/30 days (Apr 16 to 30): the purchase day is bought whole.
    assert [(l.description, l.quantity, l.amount) for l in lines] == [
        ("Workplace Standard licence (monthly), pro rata 2027-04-16 to 2027-05-01", 2, 300)]


def test_an_item_held_and_billed_costs_nothing_again(catalog):
    billed = [line.span("INV-1") for line in month(catalog, FULL)]
    assert month(catalog, FULL, since=utc(2027, 4, 20), ledger=billed) == []


def test_an_upgrade_charges_the_new_plan_and_credits_the_old_for_the_same_days(catalog):
    billed = [line.span("INV-1") for line in month(catalog, {STANDARD: 2})]
    lines = month(catalog, {PRO: 2}, since=utc(2027, 4, 11), ledger=billed)   # 20 days left
    assert [(l.description, l.quantity, l.amount) for l in lines] == [
        ("Workplace Professional licence (monthly), pro rata 2027-04-11 to 2027-05-01", 2, 800),
        ("Credit: Workplace Standard licence, unused 2027-04-11 to 2027-05-01", -2, -400)]
    assert total(lines) == 400   # 2 x (600 - 300) x 20/30


def test_a_yearly_switch_charges_the_year_and_credits_the_unused_month(catalog):
    billed = [line.span("INV-1") for line in month(catalog, {STANDARD: 2, Item.addon("support_essentials"): 1})]
    switch = utc(2027, 4, 11, 9)
    # The add-on's removal was scheduled: it ends at the switch, credited, not billed for the year.
    lines = charges(catalog, "USD", Cycle.YEARLY, (switch, switch + relativedelta(years=1)), switch,
                    {STANDARD: 2}, billed)
    assert [(l.description, l.amount) for l in lines] == [
        ("Workplace Standard licence (yearly)", 6000),
        ("Credit: Workplace Standard licence, unused 2027-04-11 to 2027-05-01", -400),
        ("Credit: Premium support Essentials, unused 2027-04-11 to 2027-05-01", -3333)]


def test_nothing_is_due_on_the_renewal_date_itself(catalog):
    assert month(catalog, {STANDARD: 9}, since=utc(2027, 5, 1, 8)) == []


def test_a_credit_spans_undo_exactly_what_they_credit(catalog):
    """After a credit, the ledger's net quantity over the credited days is what is held."""
    billed = [line.span("INV-1") for line in month(catalog, {STANDARD: 2})]
    upgrade = month(catalog, {PRO: 2}, since=utc(2027, 4, 11), ledger=billed)
    ledger = billed + [line.span("INV-2") for line in upgrade]
    assert month(catalog, {PRO: 2}, since=utc(2027, 4, 20), ledger=ledger) == []


def test_each_holding_says_until_when_it_is_paid(catalog):
    from domain.billing import holdings
    from domain.states import OrgStatus
    from tests.domain.builders import PERIOD_START, RENEWS_AT, active_org
    paid = holdings(active_org(), catalog)
    assert [(h.name, h.quantity, h.paid_through) for h in paid] == [
        ("Workplace Standard licence", 5, RENEWS_AT), ("Storage unit 25 GB", 3, RENEWS_AT)]
    # In dunning on this cycle's invoice: paid only to the cycle's start.
    unpaid = holdings(active_org(status=OrgStatus.PAST_DUE, dunning_invoice="INV-1"), catalog)
    assert [h.paid_through for h in unpaid] == [PERIOD_START, PERIOD_START]
