"""`billing simulate` with a buyer in Indonesia (SIMULATE.md: org.country, org.tax_id; the
invoice event's subtotal and tax): the real workflow bills the renewal with PPN and charges the
total, and a buyer abroad is charged the subtotal."""

import pytest

from tests.simulate.conftest import events, simulate

SCENARIO = """\
start: "2026-01-31T09:00:00+00:00"
until: "P30D"
org:
  id: toko
  admin_email: admin@toko.test
  locale: id
  currency: {currency}
  plan: standard
  cycle: monthly
  card: "4242424242424242"
  {country}
  users:
    - {{email: admin@toko.test, storage_gb: 1}}
    - {{email: b@toko.test, storage_gb: 1}}
actions: []
"""


@pytest.mark.parametrize("currency, country, subtotal, tax", [
    ("IDR", "country: ID\n  tax_id: \"01.234.567.8-901.000\"", 90000, 9900),   # DPP 82.500 x 12%
    ("USD", "country: ID", 600, 66),                                          # DPP 550 cents x 12%
    ("IDR", "country: US", 90000, 0),                                         # an export: no tax
    ("IDR", "", 90000, 0),                                                    # no country: none
])
def test_the_renewal_invoice_carries_its_subtotal_and_tax_and_the_total_is_charged(tmp_path, currency, country,
                                                                                    subtotal, tax):
    path = tmp_path / "scenario.yaml"
    path.write_text(SCENARIO.format(currency=currency, country=country), encoding="utf-8")
    doc = simulate(path, "--json").doc
    [opened] = events(doc, "invoice", status="open")
    assert (opened["subtotal"], opened["tax"], opened["total"]) == (subtotal, tax, subtotal + tax)
    [charge] = events(doc, "charge")
    assert (charge["amount"], charge["outcome"]) == (subtotal + tax, "succeeded")
    [paid] = events(doc, "invoice", status="paid")
    assert (paid["subtotal"], paid["tax"], paid["total"]) == (subtotal, tax, subtotal + tax)


def test_a_country_that_is_no_country_is_a_bad_file_naming_the_field(tmp_path):
    path = tmp_path / "scenario.yaml"
    path.write_text(SCENARIO.format(currency="IDR", country="country: XX"), encoding="utf-8")
    result = simulate(path, "--json")
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr.startswith("scenario error: org.country: 'XX' is not an ISO 3166 alpha-2 country code")
