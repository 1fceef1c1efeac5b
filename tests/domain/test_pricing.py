import pytest

from domain.catalog import load_catalog
from domain.pricing import Holdings, LineDraft, recurring_lines, total
from domain.states import Cycle


@pytest.fixture(scope="module")
def catalog():
    return load_catalog()


FULL = Holdings(plan="standard", licences=6, storage_units={25: 2, 5: 1}, tier_contacts=3000,
                addons=("support_essentials",))


def test_full_holding_monthly_usd(catalog):
    lines = recurring_lines(catalog, FULL, "USD", Cycle.MONTHLY)
    assert lines == [
        LineDraft("Workplace Standard licence (monthly)", 6, 300, 1800),
        LineDraft("Storage unit 5 GB (monthly)", 1, 100, 100),
        LineDraft("Storage unit 25 GB (monthly)", 2, 400, 800),
        LineDraft("Campaigns subscribers 3000 contacts (monthly)", 3, 500, 1500),
        LineDraft("Premium support Essentials (monthly)", 1, 5000, 5000),
    ]
    assert total(lines) == 9200   # 1800 + 100 + 800 + 1500 + 5000


def test_full_holding_yearly_usd(catalog):
    lines = recurring_lines(catalog, FULL, "USD", Cycle.YEARLY)
    assert [(l.quantity, l.unit_amount, l.amount) for l in lines] == [
        (6, 3000, 18000), (1, 1000, 1000), (2, 4000, 8000), (3, 5000, 15000), (1, 50000, 50000)]
    assert lines[0].description == "Workplace Standard licence (yearly)"
    assert total(lines) == 92000


def test_full_holding_monthly_idr(catalog):
    lines = recurring_lines(catalog, FULL, "IDR", Cycle.MONTHLY)
    # 6 x 45000 + 1 x 15000 + 2 x 60000 + 3 x 75000 + 750000
    assert [l.amount for l in lines] == [270000, 15000, 120000, 225000, 750000]
    assert total(lines) == 1380000


def test_plan_only(catalog):
    lines = recurring_lines(catalog, Holdings("professional", 3, {}), "USD", Cycle.MONTHLY)
    assert lines == [LineDraft("Workplace Professional licence (monthly)", 3, 600, 1800)]


def test_two_flat_addons_and_a_large_tier(catalog):
    holding = Holdings("mail_lite_5", 1, {}, tier_contacts=50000, addons=("support_essentials", "support_enhanced"))
    lines = recurring_lines(catalog, holding, "USD", Cycle.YEARLY)
    assert [l.amount for l in lines] == [1000, 50 * 5000, 50000, 150000]
    assert total(lines) == 451000


def test_free_plan_bills_no_licences_but_still_bills_add_ons(catalog):
    lines = recurring_lines(catalog, Holdings("free", 3, {100: 1}), "USD", Cycle.MONTHLY)
    assert lines == [LineDraft("Storage unit 100 GB (monthly)", 1, 1200, 1200)]


def test_zero_counts_produce_no_lines(catalog):
    assert recurring_lines(catalog, Holdings("standard", 0, {25: 0}), "USD", Cycle.MONTHLY) == []
    assert total([]) == 0


def test_total_sums_negative_credit_lines():
    lines = [LineDraft("year", 1, 3000, 3000), LineDraft("credit", 1, -150, -150)]
    assert total(lines) == 2850
