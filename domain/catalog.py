"""The product catalog: plans, storage units and add-ons with their prices.

Loaded from YAML and validated once at start-up; a bad file fails start-up with a message
naming the faulty entry. The loaded catalog is plain frozen data, so workflows may receive it
as an activity result (recorded in history, hence deterministic on replay)."""

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from pathlib import Path
from typing import Any

import yaml

from domain.errors import CatalogError, InvalidInput, UnknownPlan
from domain.money import SUPPORTED_CURRENCIES
from domain.states import FREE_PLAN, Cycle
from domain.tax import TaxRule, TaxRules, check_country

DEFAULT_CATALOG_PATH = Path(__file__).with_name("catalog.yaml")

# {currency: {cycle: amount}}
PriceTable = dict[str, dict[str, int]]


@dataclass(frozen=True)
class PlanFeatures:
    """What a plan lets the mail platform switch on (seed 000): Professional's archiving,
    eDiscovery and S/MIME; the free plan's web-only access and single domain."""
    archiving: bool = False
    ediscovery: bool = False
    smime: bool = False
    web_only: bool = False
    domains: int | None = None   # None: as many as the org likes


FEATURE_FLAGS = ("archiving", "ediscovery", "smime", "web_only")


@dataclass(frozen=True)
class Plan:
    id: str
    name: str
    quota_gb: int
    prices: PriceTable
    user_cap: int | None = None
    features: PlanFeatures = field(default_factory=PlanFeatures)

    @property
    def is_paid(self) -> bool:
        return self.id != FREE_PLAN


@dataclass(frozen=True)
class TieredAddon:
    id: str
    name: str
    step: int
    min: int
    max: int
    price_per_step: PriceTable


@dataclass(frozen=True)
class FlatAddon:
    id: str
    name: str
    prices: PriceTable


@dataclass(frozen=True)
class Catalog:
    plans: dict[str, Plan]
    storage_units: dict[int, PriceTable]
    tiered_addons: dict[str, TieredAddon] = field(default_factory=dict)
    flat_addons: dict[str, FlatAddon] = field(default_factory=dict)
    taxes: TaxRules = field(default_factory=dict)   # by the buyer's country (domain.tax)

    def plan(self, plan_id: str) -> Plan:
        try:
            return self.plans[plan_id]
        except KeyError:
            raise UnknownPlan(f"unknown plan {plan_id!r}; known plans: {', '.join(sorted(self.plans))}") from None

    def plan_price(self, plan_id: str, currency: str, cycle: Cycle) -> int:
        return self.plan(plan_id).prices[currency][str(cycle)]

    def storage_price(self, unit_gb: int, currency: str, cycle: Cycle) -> int:
        if unit_gb not in self.storage_units:
            sizes = ", ".join(str(s) for s in sorted(self.storage_units))
            raise CatalogError(f"unknown storage unit {unit_gb} GB; units are {sizes} GB")
        return self.storage_units[unit_gb][currency][str(cycle)]

    def tier_price(self, addon_id: str, contacts: int, currency: str, cycle: Cycle) -> int:
        addon = self.tiered_addons[addon_id]
        return (contacts // addon.step) * addon.price_per_step[currency][str(cycle)]

    def flat_addon_price(self, addon_id: str, currency: str, cycle: Cycle) -> int:
        return self.flat_addons[addon_id].prices[currency][str(cycle)]


def _price_table(raw: Any, where: str) -> PriceTable:
    if not isinstance(raw, dict):
        raise CatalogError(f"{where}: prices must map currency -> {{monthly, yearly}}")
    table: PriceTable = {}
    for currency in SUPPORTED_CURRENCIES:
        per_cycle = raw.get(currency)
        if not isinstance(per_cycle, dict):
            raise CatalogError(f"{where}: missing prices in {currency}")
        table[currency] = {}
        for cycle in Cycle:
            amount = per_cycle.get(str(cycle))
            if not isinstance(amount, int) or isinstance(amount, bool) or amount < 0:
                raise CatalogError(
                    f"{where}.{currency}.{cycle}: price must be a non-negative integer in minor units, got {amount!r}")
            table[currency][str(cycle)] = amount
    return table


def _features(raw: Any, where: str) -> PlanFeatures:
    if raw is None:
        return PlanFeatures()
    if not isinstance(raw, dict):
        raise CatalogError(f"{where}: must be a mapping of feature -> value")
    unknown = sorted(set(raw) - set(FEATURE_FLAGS) - {"domains"})
    if unknown:
        raise CatalogError(f"{where}.{unknown[0]}: unknown feature; features are "
                           f"{', '.join(FEATURE_FLAGS + ('domains',))}")
    for flag in FEATURE_FLAGS:
        if not isinstance(raw.get(flag, False), bool):
            raise CatalogError(f"{where}.{flag}: must be true or false, got {raw[flag]!r}")
    domains = raw.get("domains")
    if domains is not None and (not isinstance(domains, int) or isinstance(domains, bool) or domains <= 0):
        raise CatalogError(f"{where}.domains: must be a positive integer (or absent: no limit), got {domains!r}")
    return PlanFeatures(**{flag: raw.get(flag, False) for flag in FEATURE_FLAGS}, domains=domains)


def parse_catalog(raw: Any) -> Catalog:
    if not isinstance(raw, dict):
        raise CatalogError("catalog: top level must be a mapping")
    raw_plans = raw.get("plans")
    if not isinstance(raw_plans, dict) or FREE_PLAN not in raw_plans:
        raise CatalogError("catalog.plans: must be a mapping that includes the 'free' plan")
    plans: dict[str, Plan] = {}
    for plan_id, spec in raw_plans.items():
        where = f"catalog.plans.{plan_id}"
        if not isinstance(spec, dict):
            raise CatalogError(f"{where}: must be a mapping")
        quota = spec.get("quota_gb")
        if not isinstance(quota, int) or isinstance(quota, bool) or quota <= 0:
            raise CatalogError(f"{where}.quota_gb: must be a positive integer, got {quota!r}")
        cap = spec.get("user_cap")
        if cap is not None and (not isinstance(cap, int) or isinstance(cap, bool) or cap <= 0):
            raise CatalogError(f"{where}.user_cap: must be a positive integer, got {cap!r}")
        plans[str(plan_id)] = Plan(id=str(plan_id), name=str(spec.get("name", plan_id)), quota_gb=quota,
                                   prices=_price_table(spec.get("prices"), f"{where}.prices"), user_cap=cap,
                                   features=_features(spec.get("features"), f"{where}.features"))
    units: dict[int, PriceTable] = {}
    for size, prices in (raw.get("storage_units") or {}).items():
        if not isinstance(size, int) or size <= 0:
            raise CatalogError(f"catalog.storage_units: unit size must be a positive integer of GB, got {size!r}")
        units[size] = _price_table(prices, f"catalog.storage_units.{size}")
    tiers: dict[str, TieredAddon] = {}
    for addon_id, spec in (raw.get("tiered_addons") or {}).items():
        where = f"catalog.tiered_addons.{addon_id}"
        try:
            step, low, high = int(spec["step"]), int(spec["min"]), int(spec["max"])
        except (KeyError, TypeError, ValueError):
            raise CatalogError(f"{where}: needs integer step, min and max") from None
        if step <= 0 or low < step or high < low or low % step or high % step:
            raise CatalogError(f"{where}: min and max must be positive multiples of step, min <= max")
        tiers[addon_id] = TieredAddon(id=addon_id, name=str(spec.get("name", addon_id)), step=step, min=low,
                                      max=high, price_per_step=_price_table(spec.get("price_per_step"),
                                                                            f"{where}.price_per_step"))
    flats: dict[str, FlatAddon] = {}
    for addon_id, spec in (raw.get("flat_addons") or {}).items():
        where = f"catalog.flat_addons.{addon_id}"
        if not isinstance(spec, dict):
            raise CatalogError(f"{where}: must be a mapping")
        flats[addon_id] = FlatAddon(id=addon_id, name=str(spec.get("name", addon_id)),
                                    prices=_price_table(spec.get("prices"), f"{where}.prices"))
    return Catalog(plans=plans, storage_units=units, tiered_addons=tiers, flat_addons=flats,
                   taxes=_tax_rules(raw.get("taxes") or {}))


def _tax_rules(raw: Any) -> TaxRules:
    """`taxes: {COUNTRY: [{name, rate: "12%", base: "11/12", valid_from: DATE}, ...]}`."""
    if not isinstance(raw, dict):
        raise CatalogError("catalog.taxes: must map a country code to its rules")
    rules: dict[str, tuple[TaxRule, ...]] = {}
    for country, specs in raw.items():
        where = f"catalog.taxes.{country}"
        try:
            code = check_country(str(country))
        except InvalidInput as err:
            raise CatalogError(f"{where}: {err}") from None
        if not isinstance(specs, list) or not specs:
            raise CatalogError(f"{where}: must be a list of rules")
        found = [_tax_rule(spec, f"{where}[{n}]") for n, spec in enumerate(specs)]
        days = [rule.valid_from for rule in found]
        if len(set(days)) != len(days):
            raise CatalogError(f"{where}: two rules valid from the same day")
        rules[code] = tuple(sorted(found, key=lambda rule: rule.valid_from))
    return rules


def _tax_rule(spec: Any, where: str) -> TaxRule:
    if not isinstance(spec, dict):
        raise CatalogError(f"{where}: must be a mapping of name, rate, base and valid_from")
    name, rate, base, valid_from = (spec.get(key) for key in ("name", "rate", "base", "valid_from"))
    if not isinstance(name, str) or not name.strip():
        raise CatalogError(f"{where}.name: must be the tax's name, as printed (PPN, VAT)")
    try:
        # Written as text ("12%", "11/12"): YAML would read 0.12 as a float.
        if not isinstance(rate, str) or not rate.endswith("%"):
            raise ValueError
        rate_value = Decimal(rate[:-1].strip()) / 100
        if not 0 <= rate_value < 1:
            raise ValueError
    except (ValueError, InvalidOperation):
        raise CatalogError(f"{where}.rate: must be a percentage written as text, like \"12%\", got {rate!r}") from None
    try:
        if not isinstance(base, (str, int)) or isinstance(base, bool):
            raise ValueError
        share = Fraction(str(base))
        if not 0 < share <= 1:
            raise ValueError
    except (ValueError, ZeroDivisionError):
        raise CatalogError(f"{where}.base: must be the share of the price taxed, like \"11/12\" or 1, "
                           f"got {base!r}") from None
    if not isinstance(valid_from, date):
        raise CatalogError(f"{where}.valid_from: must be a date (YYYY-MM-DD), got {valid_from!r}")
    return TaxRule(name.strip(), rate_value, share, valid_from)


def load_catalog(path: Path | str | None = None) -> Catalog:
    source = Path(path) if path else DEFAULT_CATALOG_PATH
    try:
        raw = yaml.safe_load(source.read_text(encoding="utf-8"))
    except OSError as err:
        raise CatalogError(f"catalog file {source}: {err.strerror}") from None
    except yaml.YAMLError as err:
        raise CatalogError(f"catalog file {source}: not valid YAML ({err})") from None
    return parse_catalog(raw)
