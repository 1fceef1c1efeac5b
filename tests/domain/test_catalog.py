import copy

import pytest
import yaml

from domain.catalog import DEFAULT_CATALOG_PATH, load_catalog, parse_catalog
from domain.errors import CatalogError, UnknownPlan
from domain.states import Cycle


@pytest.fixture(scope="module")
def raw():
    return yaml.safe_load(DEFAULT_CATALOG_PATH.read_text(encoding="utf-8"))


def broken(raw, mutate):
    data = copy.deepcopy(raw)
    mutate(data)
    return data


def catalog_error(data) -> str:
    with pytest.raises(CatalogError) as err:
        parse_catalog(data)
    assert err.value.type == "catalog_invalid"
    return err.value.message


# --- the shipped catalog -----------------------------------------------------------------

def test_shipped_catalog_plans_and_quotas():
    catalog = load_catalog()
    assert {pid: p.quota_gb for pid, p in catalog.plans.items()} == {
        "free": 5, "mail_lite_5": 5, "mail_lite_10": 10, "mail_premium": 50, "standard": 30, "professional": 100}
    assert catalog.plan("free").user_cap == 5
    assert catalog.plan("professional").user_cap is None
    assert not catalog.plan("free").is_paid
    assert catalog.plan("standard").is_paid
    assert catalog.plan("standard").name == "Workplace Standard"


@pytest.mark.parametrize("plan, currency, cycle, expected", [
    ("free", "USD", Cycle.MONTHLY, 0),
    ("mail_lite_5", "USD", Cycle.MONTHLY, 100),
    ("mail_lite_10", "USD", Cycle.YEARLY, 1250),
    ("mail_premium", "IDR", Cycle.MONTHLY, 60000),
    ("standard", "USD", Cycle.MONTHLY, 300),
    ("standard", "IDR", Cycle.YEARLY, 450000),
    ("professional", "USD", Cycle.YEARLY, 6000),
    ("professional", "IDR", Cycle.MONTHLY, 90000),
])
def test_shipped_plan_prices(plan, currency, cycle, expected):
    assert load_catalog().plan_price(plan, currency, cycle) == expected


def test_shipped_storage_units_tiers_and_addons():
    catalog = load_catalog()
    assert sorted(catalog.storage_units) == [5, 25, 50, 100, 200]
    assert catalog.storage_price(25, "USD", Cycle.MONTHLY) == 400
    assert catalog.storage_price(200, "IDR", Cycle.YEARLY) == 3000000
    tier = catalog.tiered_addons["campaigns_contacts"]
    assert (tier.step, tier.min, tier.max) == (1000, 1000, 50000)
    assert catalog.tier_price("campaigns_contacts", 3000, "USD", Cycle.MONTHLY) == 1500   # 3 x 500
    assert catalog.tier_price("campaigns_contacts", 50000, "IDR", Cycle.YEARLY) == 37500000  # 50 x 750000
    assert sorted(catalog.flat_addons) == ["support_enhanced", "support_essentials"]
    assert catalog.flat_addon_price("support_essentials", "USD", Cycle.MONTHLY) == 5000
    assert catalog.flat_addon_price("support_enhanced", "IDR", Cycle.YEARLY) == 22500000


def test_unknown_plan_lists_known_plans():
    with pytest.raises(UnknownPlan) as err:
        load_catalog().plan("enterprise")
    assert err.value.message == ("unknown plan 'enterprise'; known plans: free, mail_lite_10, mail_lite_5, "
                                 "mail_premium, professional, standard")


def test_unknown_storage_unit_lists_sizes():
    with pytest.raises(CatalogError, match=r"unknown storage unit 10 GB; units are 5, 25, 50, 100, 200 GB"):
        load_catalog().storage_price(10, "USD", Cycle.MONTHLY)


def test_load_catalog_missing_file(tmp_path):
    with pytest.raises(CatalogError, match=r"catalog file .*nope\.yaml: "):
        load_catalog(tmp_path / "nope.yaml")


def test_load_catalog_invalid_yaml(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("plans: {free: [\n", encoding="utf-8")
    with pytest.raises(CatalogError, match="not valid YAML"):
        load_catalog(path)


def test_load_catalog_from_a_path(tmp_path, raw):
    path = tmp_path / "small.yaml"
    path.write_text(yaml.safe_dump({"plans": {"free": raw["plans"]["free"]}}), encoding="utf-8")
    catalog = load_catalog(str(path))
    assert list(catalog.plans) == ["free"]
    assert catalog.storage_units == {} and catalog.tiered_addons == {} and catalog.flat_addons == {}


# --- errors name the faulty entry ------------------------------------------------------------

def test_top_level_must_be_a_mapping():
    assert catalog_error(["plans"]) == "catalog: top level must be a mapping"


def test_missing_free_plan(raw):
    data = broken(raw, lambda d: d["plans"].pop("free"))
    assert catalog_error(data) == "catalog.plans: must be a mapping that includes the 'free' plan"


def test_missing_idr_prices(raw):
    data = broken(raw, lambda d: d["plans"]["standard"]["prices"].pop("IDR"))
    assert catalog_error(data) == "catalog.plans.standard.prices: missing prices in IDR"


def test_missing_prices_altogether(raw):
    data = broken(raw, lambda d: d["plans"]["mail_premium"].pop("prices"))
    assert catalog_error(data).startswith("catalog.plans.mail_premium.prices: prices must map currency")


def test_negative_price(raw):
    data = broken(raw, lambda d: d["plans"]["standard"]["prices"]["USD"].__setitem__("monthly", -300))
    assert catalog_error(data) == ("catalog.plans.standard.prices.USD.monthly: price must be a non-negative "
                                   "integer in minor units, got -300")


def test_float_price(raw):
    data = broken(raw, lambda d: d["plans"]["standard"]["prices"]["IDR"].__setitem__("yearly", 4500.5))
    assert "catalog.plans.standard.prices.IDR.yearly" in catalog_error(data)
    assert "got 4500.5" in catalog_error(data)


def test_boolean_price(raw):
    data = broken(raw, lambda d: d["plans"]["free"]["prices"]["USD"].__setitem__("monthly", False))
    assert catalog_error(data).startswith("catalog.plans.free.prices.USD.monthly: price must be")


def test_missing_cycle_price(raw):
    data = broken(raw, lambda d: d["plans"]["professional"]["prices"]["USD"].pop("yearly"))
    assert catalog_error(data) == ("catalog.plans.professional.prices.USD.yearly: price must be a "
                                   "non-negative integer in minor units, got None")


@pytest.mark.parametrize("quota", [0, -5, 2.5, "30", None])
def test_bad_quota(raw, quota):
    data = broken(raw, lambda d: d["plans"]["standard"].__setitem__("quota_gb", quota))
    assert catalog_error(data) == f"catalog.plans.standard.quota_gb: must be a positive integer, got {quota!r}"


@pytest.mark.parametrize("cap", [0, -1, "5"])
def test_bad_user_cap(raw, cap):
    data = broken(raw, lambda d: d["plans"]["free"].__setitem__("user_cap", cap))
    assert catalog_error(data) == f"catalog.plans.free.user_cap: must be a positive integer, got {cap!r}"


def test_plan_spec_must_be_a_mapping(raw):
    data = broken(raw, lambda d: d["plans"].__setitem__("standard", "cheap"))
    assert catalog_error(data) == "catalog.plans.standard: must be a mapping"


def test_storage_unit_missing_currency(raw):
    data = broken(raw, lambda d: d["storage_units"][25].pop("USD"))
    assert catalog_error(data) == "catalog.storage_units.25: missing prices in USD"


def test_storage_unit_bad_size(raw):
    data = broken(raw, lambda d: d["storage_units"].__setitem__("big", d["storage_units"][5]))
    assert catalog_error(data) == ("catalog.storage_units: unit size must be a positive integer of GB, "
                                   "got 'big'")


def test_tiered_addon_missing_step(raw):
    data = broken(raw, lambda d: d["tiered_addons"]["campaigns_contacts"].pop("step"))
    assert catalog_error(data) == "catalog.tiered_addons.campaigns_contacts: needs integer step, min and max"


def test_tiered_addon_bounds_not_multiples_of_step(raw):
    data = broken(raw, lambda d: d["tiered_addons"]["campaigns_contacts"].__setitem__("max", 50500))
    assert catalog_error(data) == ("catalog.tiered_addons.campaigns_contacts: min and max must be positive "
                                   "multiples of step, min <= max")


def test_tiered_addon_bad_price(raw):
    data = broken(raw, lambda d: d["tiered_addons"]["campaigns_contacts"]["price_per_step"]["IDR"]
                  .__setitem__("monthly", -1))
    assert catalog_error(data).startswith("catalog.tiered_addons.campaigns_contacts.price_per_step.IDR.monthly:")


def test_flat_addon_missing_idr(raw):
    data = broken(raw, lambda d: d["flat_addons"]["support_enhanced"]["prices"].pop("IDR"))
    assert catalog_error(data) == "catalog.flat_addons.support_enhanced.prices: missing prices in IDR"


def test_flat_addon_must_be_a_mapping(raw):
    data = broken(raw, lambda d: d["flat_addons"].__setitem__("support_essentials", 5000))
    assert catalog_error(data) == "catalog.flat_addons.support_essentials: must be a mapping"


def test_boolean_quota_is_rejected(raw):
    # YAML reads `quota_gb: yes` as True, which is an int in Python; prices already reject bools.
    data = broken(raw, lambda d: d["plans"]["standard"].__setitem__("quota_gb", True))
    assert catalog_error(data) == "catalog.plans.standard.quota_gb: must be a positive integer, got True"


def test_boolean_user_cap_is_rejected(raw):
    data = broken(raw, lambda d: d["plans"]["free"].__setitem__("user_cap", True))
    assert catalog_error(data) == "catalog.plans.free.user_cap: must be a positive integer, got True"
