"""Tax on invoices (DOMAIN.md "Tax"), without Temporal or a database: amounts worked out by hand
in IDR and USD for a renewal, a prorated purchase, an upgrade with a credit, a monthly -> yearly
switch, an org with no country and a law change on a date; a credit note's negative tax kept in
the org's credit; the rules as catalog data; and properties over any invoice and any statement."""

from dataclasses import replace
from datetime import date, timedelta
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain import requests as rq
from domain.billing import Line
from domain.catalog import load_catalog, parse_catalog
from domain.credit import account_credit
from domain.decisions import Context, Draft, InvoiceDraft
from domain.errors import CatalogError, InvalidInput
from domain.operations import OPERATIONS, decide
from domain.renewal import renew
from domain.statement import Buyer, IssuedInvoice, ReceivedPayment, statement
from domain.states import InvoiceKind, InvoiceStatus
from domain.subscription import Item, catalog_facts
from domain.tax import TaxRule, check_country, check_tax_id, rule_for, tax_on
from tests.domain.builders import PERIOD_START, RENEWS_AT, active_org, policy, utc

CATALOG = load_catalog()
P = policy(billing_staff=None)
MID_PERIOD = utc(2026, 4, 10, 9)     # 20 of the period's 30 days left (Mar 31 -> Apr 30)


def indonesian(**changes):
    """Standard, monthly, 2 users on 2 licences and nothing else, in rupiah, a buyer in Indonesia."""
    return active_org(**{"licences": 2, "user_count": 2, "storage": [], "currency": "IDR", "country": "ID", **changes})


def decided(name, state, request, now=MID_PERIOD, catalog=CATALOG):
    return decide(OPERATIONS[name], state, request, Context(now, P, catalog, "k"),
                  catalog_facts(catalog, state.currency))


def amounts(invoice: InvoiceDraft) -> tuple:
    return invoice.lines_total, invoice.tax.base, invoice.tax.label, invoice.tax.amount, invoice.total


# ---- hand-computed invoices -----------------------------------------------------------------------

def test_a_renewal_of_two_standard_licences_in_rupiah():
    """The issue's example: Rp 90.000, DPP 11/12 of it Rp 82.500, PPN 12% of that Rp 9.900."""
    renewed = renew(indonesian(), RENEWS_AT, Context(RENEWS_AT, P, CATALOG, "renewal"))
    assert amounts(renewed.invoice) == (90000, 82500, "PPN 12%", 9900, 99900)


def test_a_renewal_in_dollars_for_a_buyer_in_indonesia():
    # 5 licences x $3.00 + 3 x 25 GB at $4.00 = $27.00; DPP $24.75; PPN 12% = $2.97.
    renewed = renew(active_org(country="ID"), RENEWS_AT, Context(RENEWS_AT, P, CATALOG, "renewal"))
    assert amounts(renewed.invoice) == (2700, 2475, "PPN 12%", 297, 2997)


def test_an_org_with_no_country_or_one_abroad_pays_no_tax():
    for country in (None, "US", "SG"):
        renewed = renew(active_org(country=country), RENEWS_AT, Context(RENEWS_AT, P, CATALOG, "renewal"))
        assert amounts(renewed.invoice) == (2700, 0, None, 0, 2700), country


def test_a_prorated_purchase_is_taxed_on_its_share_of_the_period():
    # One more licence for 20 of 30 days: Rp 30.000; DPP Rp 27.500; PPN Rp 3.300.
    bought = decided("add_licences", indonesian(), rq.AddLicencesRequest(1))
    assert amounts(bought.invoice) == (30000, 27500, "PPN 12%", 3300, 33300)
    # In dollars: a 25 GB unit ($4.00) for 20 of 30 days is $2.67 (266.67 cents, half up);
    # DPP 244.75 -> $2.45 shown; PPN 12% of 244.75 = 29.37 cents -> $0.29.
    unit = decided("buy_storage", active_org(country="ID"), rq.BuyStorageRequest(25, 1))
    assert amounts(unit.invoice) == (267, 245, "PPN 12%", 29, 296)


def test_an_upgrade_is_taxed_on_the_new_plan_less_the_credit_for_the_old():
    # Professional 2 x Rp 90.000 x 20/30 = Rp 120.000, Standard's unused 2 x Rp 45.000 x 20/30 =
    # -Rp 60.000 credited: subtotal Rp 60.000, DPP Rp 55.000, PPN Rp 6.600.
    upgraded = decided("upgrade", indonesian(), rq.UpgradeRequest("professional"))
    assert sorted(line.amount for line in upgraded.invoice.lines) == [-60000, 120000]
    assert amounts(upgraded.invoice) == (60000, 55000, "PPN 12%", 6600, 66600)


def test_a_switch_to_yearly_is_taxed_on_the_year_less_the_unused_month():
    # The year: 2 x Rp 450.000; the month's unused 20 of 30 days: -Rp 60.000. Subtotal Rp 840.000,
    # DPP Rp 770.000, PPN Rp 92.400.
    switched = decided("switch_to_yearly", indonesian(), rq.SwitchToYearlyRequest())
    assert sorted(line.amount for line in switched.invoice.lines) == [-60000, 900000]
    assert amounts(switched.invoice) == (840000, 770000, "PPN 12%", 92400, 932400)


def test_a_law_change_applies_to_the_invoices_issued_from_its_day():
    """A rule valid from 2026-07-01 (12% of the whole price): the renewal issued on Jun 30 is taxed
    by the rule before, the next one, on Jul 30, by the new one."""
    law_change = TaxRule("PPN", Decimal("0.12"), Fraction(1), date(2026, 7, 1))
    catalog = replace(CATALOG, taxes={"ID": (*CATALOG.taxes["ID"], law_change)})
    june = indonesian(cycle_anchor=utc(2026, 1, 30, 9), period_start=utc(2026, 5, 30, 9),
                      renews_at=utc(2026, 6, 30, 9))
    first = renew(june, june.renews_at, Context(june.renews_at, P, catalog, "r1"))
    assert amounts(first.invoice) == (90000, 82500, "PPN 12%", 9900, 99900)
    second = renew(first.state, first.state.renews_at, Context(first.state.renews_at, P, catalog, "r2"))
    assert first.state.renews_at == utc(2026, 7, 30, 9)
    assert amounts(second.invoice) == (90000, 90000, "PPN 12%", 10800, 100800)


def test_the_sample_rules_before_2025_tax_the_whole_price_at_11_percent():
    december = indonesian(cycle_anchor=utc(2024, 1, 31, 9), period_start=utc(2024, 11, 30, 9),
                          renews_at=utc(2024, 12, 31, 9))
    renewed = renew(december, december.renews_at, Context(december.renews_at, P, CATALOG, "r"))
    assert amounts(renewed.invoice) == (90000, 90000, "PPN 11%", 9900, 99900)
    assert rule_for(CATALOG.taxes, "ID", date(2022, 3, 31)) is None    # before any rule: none


# ---- credit notes and account credit -----------------------------------------------------------------

def _credit_line(amount: int) -> Line:
    return Line("credit", Item.licence("standard"), -1, 45000, amount, PERIOD_START, RENEWS_AT)


def test_a_credit_note_keeps_its_negative_tax_in_the_credit_the_org_is_owed():
    draft = Draft(indonesian())
    draft.bill(InvoiceDraft(InvoiceKind.CYCLE_SWITCH, [_credit_line(-90000)]), CATALOG, MID_PERIOD)
    note = draft.decision("credited").invoice
    assert amounts(note) == (-90000, -82500, "PPN 12%", -9900, -99900)
    assert account_credit([(InvoiceStatus.CREDITED, note.total, 0)]) == 99900


def test_account_credit_pays_the_invoice_with_its_tax():
    """The credit is money already taxed: taken off after the tax, like a payment."""
    renewed = renew(indonesian(credit=30000), RENEWS_AT, Context(RENEWS_AT, P, CATALOG, "renewal"))
    assert amounts(renewed.invoice) == (90000, 82500, "PPN 12%", 9900, 69900)
    assert renewed.invoice.credit_applied == 30000 and renewed.state.credit == 0
    covered = renew(indonesian(credit=150000), RENEWS_AT, Context(RENEWS_AT, P, CATALOG, "renewal"))
    assert covered.invoice.credit_applied == 99900 and covered.invoice.total == 0
    assert covered.state.credit == 150000 - 99900


# ---- rounding ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("subtotal, base, tax", [
    (150, 138, 17),       # 16.5 exactly: half away from zero (Python's round gives 16)
    (-150, -138, -17),    # and below zero too (round gives -16)
    (186, 171, 20),       # 20.46: the base (170.5) is not rounded before the rate (171 x 12% = 20.52 -> 21)
    (1, 1, 0), (0, 0, 0),
    (10**15, 916666666666667, 110000000000000),
])
def test_the_tax_is_rounded_half_away_from_zero_once(subtotal, base, tax):
    rule = rule_for(CATALOG.taxes, "ID", date(2026, 1, 1))
    assert (tax_on(subtotal, rule).base, tax_on(subtotal, rule).amount) == (base, tax)


def _half_away(value: Fraction) -> int:
    """An oracle of its own: integer arithmetic on the exact fraction."""
    sign = -1 if value < 0 else 1
    return sign * int((abs(value) * 2 + 1) // 2)


RULES = st.builds(TaxRule, st.sampled_from(["PPN", "VAT"]),
                  st.integers(0, 9999).map(lambda bp: Decimal(bp) / 10000),
                  st.fractions(min_value=Fraction(1, 100), max_value=1, max_denominator=100),
                  st.dates(date(2000, 1, 1), date(2030, 1, 1)))


@settings(max_examples=300, deadline=None, database=None)
@given(amounts_=st.lists(st.integers(-10**9, 10**9), min_size=1, max_size=8), rules=st.lists(RULES, max_size=3),
       country=st.sampled_from(["ID", "US", None]), issued=st.dates(date(2000, 1, 1), date(2031, 1, 1)))
def test_any_invoice_is_taxed_by_the_rule_in_force_and_its_total_is_subtotal_plus_tax(amounts_, rules, country,
                                                                                      issued):
    by_day = {rule.valid_from: rule for rule in rules}
    catalog = replace(CATALOG, taxes={"ID": tuple(sorted(by_day.values(), key=lambda r: r.valid_from))})
    lines = [replace(_credit_line(amount), amount=amount) for amount in amounts_]
    draft = Draft(indonesian(country=country))
    draft.bill(InvoiceDraft(InvoiceKind.RENEWAL, lines, issued_at=utc(issued.year, issued.month, issued.day)),
               catalog, MID_PERIOD)
    invoice = draft.decision("billed").invoice
    subtotal = sum(amounts_)
    in_force = [r for r in by_day.values() if r.valid_from <= issued] if country == "ID" else []
    rule = max(in_force, key=lambda r: r.valid_from, default=None)
    expected = _half_away(Fraction(rule.rate) * rule.base_share * subtotal) if rule else 0
    assert invoice.lines_total == subtotal and invoice.tax.amount == expected
    assert invoice.total == subtotal + invoice.tax.amount
    assert invoice.tax.name == (rule.name if rule else None)


@settings(max_examples=200, deadline=None, database=None)
@given(st.lists(st.tuples(st.integers(0, 10**9), st.integers(0, 100), st.integers(0, 60)), min_size=1, max_size=10))
def test_a_statements_closing_balance_is_its_totals_less_its_payments(invoices):
    """Any taxed invoices, each paid in part or not at all: the balance at the end is what they
    came to, tax included, less what was paid."""
    rule = rule_for(CATALOG.taxes, "ID", date(2026, 1, 1))
    start = utc(2026, 1, 1)
    issued = []
    for n, (subtotal, paid_percent, day) in enumerate(invoices):
        total = subtotal + tax_on(subtotal, rule).amount
        paid = total * paid_percent // 100
        at = start + timedelta(days=day)
        payments = [ReceivedPayment(at + timedelta(hours=1), paid, "visa", "4242")] if paid else []
        issued.append(IssuedInvoice(f"INV-{n}", at, total, InvoiceStatus.PAID if paid == total else InvoiceStatus.OPEN,
                                    None, payments))
    result = statement(Buyer("toko", "Toko", "a@toko.test", "id", None, "ID"), "IDR", issued, start,
                       start + timedelta(days=90))
    assert result.opening == 0
    assert result.closing == sum(i.total for i in issued) - sum(p.amount for i in issued for p in i.payments)


# ---- the rules as data, the org's fields -----------------------------------------------------------

def test_the_sample_rules_are_read_from_the_catalog():
    assert [(r.name, r.rate, r.base_share, r.valid_from) for r in CATALOG.taxes["ID"]] == [
        ("PPN", Decimal("0.11"), Fraction(1), date(2022, 4, 1)),
        ("PPN", Decimal("0.12"), Fraction(11, 12), date(2025, 1, 1))]


BASE = {"plans": {"free": {"quota_gb": 5, "prices": {c: {"monthly": 0, "yearly": 0} for c in ("USD", "IDR")}}}}


@pytest.mark.parametrize("taxes, message", [
    ({"XX": [{"name": "VAT", "rate": "10%", "base": 1, "valid_from": date(2025, 1, 1)}]},
     "catalog.taxes.XX: country: 'XX' is not an ISO 3166 alpha-2 country code"),
    ({"ID": [{"name": "PPN", "rate": 0.12, "base": 1, "valid_from": date(2025, 1, 1)}]},
     'catalog.taxes.ID[0].rate: must be a percentage written as text, like "12%", got 0.12'),
    ({"ID": [{"name": "PPN", "rate": "12%", "base": "12/11", "valid_from": date(2025, 1, 1)}]},
     "catalog.taxes.ID[0].base: must be the share of the price taxed"),
    ({"ID": [{"name": "PPN", "rate": "12%", "base": 1, "valid_from": "soon"}]},
     "catalog.taxes.ID[0].valid_from: must be a date (YYYY-MM-DD), got 'soon'"),
    ({"ID": [{"name": "PPN", "rate": "12%", "base": 1, "valid_from": date(2025, 1, 1)},
             {"name": "PPN", "rate": "11%", "base": 1, "valid_from": date(2025, 1, 1)}]},
     "catalog.taxes.ID: two rules valid from the same day"),
    ({"ID": [{"rate": "12%", "base": 1, "valid_from": date(2025, 1, 1)}]}, "catalog.taxes.ID[0].name: must be"),
])
def test_a_bad_rule_names_its_entry(taxes, message):
    with pytest.raises(CatalogError) as raised:
        parse_catalog({**BASE, "taxes": taxes})
    assert message in str(raised.value)


def test_a_country_is_an_iso_alpha_2_code_and_a_tax_number_is_printable():
    assert check_country("id") == "ID" and check_country(" SG ") == "SG" and check_country("") is None
    for bad in ("ZZ", "IDN", "Indonesia", "1"):
        with pytest.raises(InvalidInput, match="is not an ISO 3166 alpha-2 country code"):
            check_country(bad)
    assert check_tax_id(" 01.234.567.8-901.000 ") == "01.234.567.8-901.000" and check_tax_id("") is None
    with pytest.raises(InvalidInput, match="tax_id: .* is not a tax number"):
        check_tax_id("01<script>")
