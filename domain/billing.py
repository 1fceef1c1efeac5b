"""Billing derived from holdings (Kill Bill's invoice tree, STYLE.md).

What is due for an item over the days [since, end) of a period is its catalog price for that
share of the period, less what the ledger says was already billed for that item over those
days. One function serves every case: a renewal (nothing billed yet: full price), a purchase
mid-cycle (only the added quantity is due), an upgrade (the new plan's licences are charged,
the old plan's unused days credited), a re-added item whose removal was scheduled (already
billed: nothing due), a yearly switch (the year charged, the unused month credited, items that
end at the switch credited only)."""

from dataclasses import dataclass
from datetime import datetime
from fractions import Fraction

from domain.catalog import Catalog
from domain.proration import days_left, overlap_days, period_days, round_fraction
from domain.states import FREE_PLAN, Cycle
from domain.subscription import BilledSpan, Item, ItemKind, OrgSnapshot


@dataclass(frozen=True)
class Line:
    """An invoice line; it is also the ledger entry for its item over [start, end)."""
    description: str
    item: Item
    quantity: int
    unit_amount: int    # full-period price of one unit
    amount: int
    start: datetime
    end: datetime

    def span(self, invoice: str | None = None) -> BilledSpan:
        return BilledSpan(self.item, self.quantity, self.start, self.end, self.amount, invoice)


def total(lines: list[Line]) -> int:
    return sum(line.amount for line in lines)


@dataclass(frozen=True)
class Holding:
    """An item the org holds, how many, and until when they are paid (the end of what the ledger
    billed for them on invoices other than one still being collected)."""
    item: Item
    name: str
    quantity: int
    paid_through: datetime | None


def holdings(state: OrgSnapshot, catalog: Catalog) -> list[Holding]:
    held = held_items(state, catalog)
    unpaid = set(state.unpaid_cycles)
    found = []
    for item in sorted(held, key=line_order):
        ends = [span.end for span in state.ledger
                if span.item == item and span.quantity > 0 and span.invoice not in unpaid]
        unpaid_cycle = state.period_start if state.dunning_invoice and not state.arrears else None
        found.append(Holding(item, item_name(catalog, item, held[item]), held[item], max(ends, default=unpaid_cycle)))
    return found


def held_items(state: OrgSnapshot, catalog: Catalog) -> dict[Item, int]:
    """Quantity of every billable item the org holds; nothing on a trial or the free plan."""
    if not state.on_paid_plan or state.plan == FREE_PLAN:
        return {}
    items: dict[Item, int] = {}
    if state.licences:
        items[Item.licence(state.plan)] = state.licences
    for holding in state.storage:
        if holding.owned:
            items[Item.storage(holding.unit_gb)] = holding.owned
    tier = tier_addon(catalog)
    if state.tier_contacts and tier is not None:
        items[Item.tier(tier.id)] = state.tier_contacts // tier.step
    for addon in state.addons:
        items[Item.addon(addon)] = 1
    return items


LINE_ORDER = (ItemKind.LICENCE, ItemKind.STORAGE, ItemKind.TIER, ItemKind.ADDON)


def line_order(item: Item) -> tuple:
    """Invoices list licences, then storage units by size, the tier, flat add-ons."""
    return LINE_ORDER.index(item.kind), int(item.code) if item.kind == ItemKind.STORAGE else 0, item.code


def tier_addon(catalog: Catalog):
    return next(iter(catalog.tiered_addons.values()), None)


def unit_price(catalog: Catalog, item: Item, currency: str, cycle: Cycle) -> int:
    if item.kind == ItemKind.LICENCE:
        return catalog.plan_price(item.code, currency, cycle)
    if item.kind == ItemKind.STORAGE:
        return catalog.storage_price(item.unit_gb, currency, cycle)
    if item.kind == ItemKind.TIER:
        return catalog.tiered_addons[item.code].price_per_step[currency][str(cycle)]
    return catalog.flat_addon_price(item.code, currency, cycle)


def item_name(catalog: Catalog, item: Item, quantity: int) -> str:
    if item.kind == ItemKind.LICENCE:
        return f"{catalog.plan(item.code).name} licence"
    if item.kind == ItemKind.STORAGE:
        return f"Storage unit {item.code} GB"
    if item.kind == ItemKind.TIER:
        addon = catalog.tiered_addons[item.code]
        return f"{addon.name}, per {addon.step:,} contacts"   # the quantity counts blocks of `step`
    return catalog.flat_addons[item.code].name


def _billed(spans: list[BilledSpan], since: datetime, end: datetime) -> tuple[Fraction, int]:
    """What the spans billed for the days [since, end): the amount (each span's amount spread
    evenly over its days) and the quantity billed on `since`'s date."""
    amount, quantity = Fraction(0), 0
    for span in spans:
        days = overlap_days(span.start, span.end, since, end)
        if days:
            amount += Fraction(span.amount * days, max(1, period_days_or_zero(span.start, span.end)))
        if span.start.date() <= since.date() < span.end.date():
            quantity += span.quantity
    return amount, quantity


def period_days_or_zero(start: datetime, end: datetime) -> int:
    return overlap_days(start, end, start, end)


def charges(catalog: Catalog, currency: str, cycle: Cycle, period: tuple[datetime, datetime], since: datetime,
            held: dict[Item, int], ledger: list[BilledSpan]) -> list[Line]:
    """Lines due for holding `held` from `since` to the end of `period`, given the ledger.

    Spans billed within this period are netted with what is held (a purchase shows only the
    quantity added); spans of another period or price (the month before a yearly switch) are
    credited on lines of their own."""
    start, end = period
    since = max(since, start)
    total_days = period_days(start, end)
    left = days_left(start, end, since)
    if not left:
        return []  # nothing left of the period: the renewal bills the item in full
    by_item: dict[Item, list[BilledSpan]] = {}
    for span in ledger:
        by_item.setdefault(span.item, []).append(span)
    lines = []
    for item in sorted(set(held) | set(by_item), key=line_order):
        quantity = held.get(item, 0)
        unit = unit_price(catalog, item, currency, cycle)
        spans = by_item.get(item, [])
        same_period = [span for span in spans if span.end.date() == end.date()]
        billed, billed_quantity = _billed(same_period, since, end)
        amount = round_fraction(Fraction(unit * quantity * left, total_days) - billed)
        delta = quantity - billed_quantity
        if amount or delta:
            name = item_name(catalog, item, delta)
            if amount < 0 or delta < 0:
                description = f"Credit: {name}, unused {since:%Y-%m-%d} to {end:%Y-%m-%d}"
            elif left == total_days:
                description = f"{name} ({cycle})"
            else:
                description = f"{name} ({cycle}), pro rata {since:%Y-%m-%d} to {end:%Y-%m-%d}"
            lines.append(Line(description, item, delta, unit, amount, since, end))
        for other_end in sorted({span.end for span in spans if span.end.date() != end.date()}):
            billed, billed_quantity = _billed([s for s in spans if s.end == other_end], since, end)
            credit = round_fraction(billed)
            if credit:
                name = item_name(catalog, item, billed_quantity)
                per_unit = round_fraction(Fraction(credit, billed_quantity)) if billed_quantity else credit
                lines.append(Line(f"Credit: {name}, unused {since:%Y-%m-%d} to {min(other_end, end):%Y-%m-%d}",
                                  item, -billed_quantity, per_unit, -credit, since, min(other_end, end)))
    return lines
