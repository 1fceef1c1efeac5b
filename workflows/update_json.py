"""The JSON an Update takes, generated from its request dataclass (domain.requests): described
for the Temporal UI's "Send an Update" dialog, whose only help is the description it lists
beside each Update's name, and read back with every unknown or missing field named (the SDK's
own decoding answers "Failed decoding arguments")."""

import json
from dataclasses import MISSING, Field, fields
from functools import cache
from typing import Any

from domain.catalog import Catalog, load_catalog
from domain.errors import InvalidInput
from domain.operations import Operation
from domain.requests import Kind
from domain.states import Resolution

# Example values of text fields, by field name: what a person would type there.
_TEXT_EXAMPLES = {"requested_by": "you@example.com", "reason": "agreed with the customer",
                  "email": "new.user@example.com", "user": "user@example.com", "token": "tok_visa_4242",
                  "brand": "visa", "last4": "4242"}
_COUNT_EXAMPLES = {"contacts": 2000, "extend_days": 7}
# Kept in every example although optional: the audit log records who asked and why.
_AUDIT_FIELDS = ("requested_by", "reason")


def _required(operation: Operation, item: Field) -> bool:
    return (item.default is MISSING and item.default_factory is MISSING
            or item.name == "requested_by" and operation.actor_required
            or item.name == "reason" and operation.reason_required)


def _example_value(item: Field, catalog: Catalog) -> Any:
    kind = item.metadata.get("kind", Kind.TEXT)
    if kind == Kind.PLAN:
        # The cheapest paid plan without a user cap: a downgrade or an upgrade target alike.
        paid = [p for p in catalog.plans.values() if p.is_paid and p.user_cap is None]
        return min(paid, key=lambda p: p.prices[min(p.prices)]["monthly"]).id
    if kind == Kind.COUNT:
        return _COUNT_EXAMPLES.get(item.name, item.metadata.get("minimum", 1) or 1)
    examples = {Kind.GB: 2.5, Kind.CYCLE: "yearly", Kind.UNIT_GB: min(catalog.storage_units),
                Kind.ADDON: min(catalog.flat_addons, default="addon"), Kind.RESOLUTION: Resolution.EXTEND, Kind.SWITCH: "on",
                Kind.USAGE_ROWS: [[_TEXT_EXAMPLES["user"], 2.5]]}
    return examples.get(kind, _TEXT_EXAMPLES.get(item.name, "text"))


def example(operation: Operation, catalog: Catalog) -> dict[str, Any]:
    """A filled request: its required fields and who asks and why."""
    return {item.name: _example_value(item, catalog) for item in fields(operation.request)
            if _required(operation, item) or item.name in _AUDIT_FIELDS}


def _choices(item: Field, catalog: Catalog) -> str:
    kind = item.metadata.get("kind", Kind.TEXT)
    if kind == Kind.PLAN:
        return f": one of {', '.join(catalog.plans)}"
    if kind == Kind.UNIT_GB:
        return f": one of {', '.join(str(size) for size in sorted(catalog.storage_units))}"
    if kind == Kind.ADDON:
        return f": one of {', '.join(catalog.flat_addons)}"
    return ""


def describe(operation: Operation, catalog: Catalog) -> str:
    """The Update's description: what it does, the JSON to paste, and every field."""
    parts = []
    for item in fields(operation.request):
        help_text = item.metadata.get("help", "")
        shown = f"{item.name}{'*' if _required(operation, item) else ''} ({help_text}{_choices(item, catalog)})"
        parts.append(shown)
    return (f"{operation.description}. JSON: {json.dumps(example(operation, catalog))} "
            f"Fields (* required): {'; '.join(parts)}")


@cache
def _default_catalog() -> Catalog:
    return load_catalog()


def description(operation: Operation) -> str:
    """Descriptions are fixed when the workflow class is defined: they name the plans of the
    catalog shipped with the code (domain/catalog.yaml)."""
    return describe(operation, _default_catalog())


def read_request(operation: Operation, payload: Any) -> Any:
    """The request dataclass from the Update's JSON; raises InvalidInput naming any unknown or
    missing field. Values are checked afterwards, with the operation's own checks."""
    names = [item.name for item in fields(operation.request)]
    if payload is None:
        payload = {}
    if not isinstance(payload, dict):
        raise InvalidInput(f"{operation.name} takes a JSON object with the fields {', '.join(names)}; "
                           f"got {type(payload).__name__}")
    unknown = [key for key in payload if key not in names]
    if unknown:
        listed = ", ".join(repr(key) for key in unknown)
        raise InvalidInput(f"unknown field{'s' if len(unknown) > 1 else ''} {listed} (fields: {', '.join(names)})")
    missing = [item.name for item in fields(operation.request)
               if item.default is MISSING and item.default_factory is MISSING and item.name not in payload]
    if missing:
        listed = ", ".join(repr(name) for name in missing)
        raise InvalidInput(f"missing field{'s' if len(missing) > 1 else ''} {listed} (fields: {', '.join(names)})")
    return operation.request(**payload)
