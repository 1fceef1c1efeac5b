"""Choices on the command line: a fixed set is an Enum (Typer checks it and shell completion
offers it); what the catalog defines (plans, storage units, add-ons) is completed from the
configured catalog and checked by the domain, so a catalog change needs no code change."""

from enum import StrEnum

from domain.money import SUPPORTED_CURRENCIES
from domain.onboarding import LOCALES
from domain.states import Cycle, OrgStatus, Resolution, Switch

Locale = StrEnum("Locale", {code: code for code in LOCALES})
Currency = StrEnum("Currency", {code: code for code in SUPPORTED_CURRENCIES})
Status = OrgStatus
BillingCycle = Cycle


class ListedCycle(StrEnum):
    """The BillingCycle search attribute: "none" on a trial or the free plan."""
    MONTHLY = "monthly"
    YEARLY = "yearly"
    NONE = "none"


def _catalog():
    from domain.catalog import load_catalog
    from workers.runtime.config import Settings
    return load_catalog(Settings().catalog_path)


def _completing(values) -> list[str]:  # noqa: ANN001
    """Completion must never fail the shell: a catalog that cannot be read completes nothing."""
    try:
        return [str(value) for value in values()]
    except Exception:  # noqa: BLE001
        return []


def complete_plan(incomplete: str) -> list[str]:
    return [p for p in _completing(lambda: sorted(_catalog().plans)) if p.startswith(incomplete)]


def complete_new_org_plan(incomplete: str) -> list[str]:
    return [p for p in ["trial", *_completing(lambda: sorted(_catalog().plans))] if p.startswith(incomplete)]


def complete_unit(incomplete: str) -> list[str]:
    return [u for u in _completing(lambda: sorted(_catalog().storage_units)) if u.startswith(incomplete)]


def complete_addon(incomplete: str) -> list[str]:
    return [a for a in _completing(lambda: sorted(_catalog().flat_addons)) if a.startswith(incomplete)]
