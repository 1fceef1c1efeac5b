"""Invoice lines for what an org holds, and pro-rata lines for what it buys mid-cycle.
Everything renews together on the org's single renewal date (DOMAIN.md)."""

from dataclasses import dataclass
from datetime import datetime

from domain.catalog import Catalog
from domain.proration import prorate
from domain.states import FREE_PLAN, Cycle


@dataclass(frozen=True)
class LineDraft:
    description: str
    quantity: int
    unit_amount: int
    amount: int


@dataclass(frozen=True)
class Holdings:
    plan: str
    licences: int
    storage_units: dict[int, int]  # unit size -> count billed
    tier_contacts: int = 0
    addons: tuple[str, ...] = ()


def recurring_lines(catalog: Catalog, holdings: Holdings, currency: str, cycle: Cycle) -> list[LineDraft]:
    """Full-price lines of one cycle: plan licences, storage units, tier, flat add-ons."""
    lines: list[LineDraft] = []
    if holdings.plan != FREE_PLAN and holdings.licences:
        unit = catalog.plan_price(holdings.plan, currency, cycle)
        lines.append(LineDraft(f"{catalog.plan(holdings.plan).name} licence ({cycle})", holdings.licences, unit,
                               unit * holdings.licences))
    for size in sorted(holdings.storage_units):
        count = holdings.storage_units[size]
        if count:
            unit = catalog.storage_price(size, currency, cycle)
            lines.append(LineDraft(f"Storage unit {size} GB ({cycle})", count, unit, unit * count))
    if holdings.tier_contacts:
        addon_id = next(iter(catalog.tiered_addons))
        addon = catalog.tiered_addons[addon_id]
        steps = holdings.tier_contacts // addon.step
        unit = addon.price_per_step[currency][str(cycle)]
        lines.append(LineDraft(f"{addon.name} {holdings.tier_contacts} contacts ({cycle})", steps, unit, unit * steps))
    for addon_id in holdings.addons:
        unit = catalog.flat_addon_price(addon_id, currency, cycle)
        lines.append(LineDraft(f"{catalog.flat_addons[addon_id].name} ({cycle})", 1, unit, unit))
    return lines


def prorated_line(description: str, quantity: int, full_unit_amount: int, period_start: datetime,
                  period_end: datetime, at: datetime) -> LineDraft:
    """A mid-cycle purchase, charged for the part of the period left."""
    amount = prorate(full_unit_amount * quantity, period_start, period_end, at)
    return LineDraft(f"{description}, pro rata {at:%Y-%m-%d} to {period_end:%Y-%m-%d}", quantity,
                     full_unit_amount, amount)


def total(lines: list[LineDraft]) -> int:
    return sum(line.amount for line in lines)
