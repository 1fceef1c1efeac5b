"""Bulk-loading orgs straight into the database (for enforcement tests and benchmarks): a large
org, and many orgs copied from one made through services.orgs.create_org."""

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from sqlalchemy import Column, Table, insert, select
from sqlalchemy.orm import Session

from db.models import Base, EntitlementVersion, Invoice, Organisation, User
from domain.entitlements import content_of, digest
from domain.onboarding import NewOrg, paid_for_one_cycle, validate_new_org
from services.orgs import create_org
from domain.policy import Policy


def create_large_org(db, catalog, org_id: str, users: int, usage_mb, at: datetime, plan: str = "free") -> None:  # noqa: ANN001
    """`usage_mb(i)` gives user i's usage; user 0 is the admin."""
    org = validate_new_org(NewOrg(id=org_id, name=org_id, admin_email=f"u0@{org_id}.test", users=[],
                                  plan=plan, cycle=None if plan == "free" else "monthly"), catalog)
    with db.transaction() as session:
        create_org(session, paid_for_one_cycle(org, at, "tests"), catalog, Policy(), at)
        session.execute(insert(User), [
            {"org_id": org_id, "email": f"u{i}@{org_id}.test", "storage_mb": usage_mb(i), "is_admin": False,
             "seq": i + 1, "created_at": at, "blocked": False} for i in range(1, users)])
        session.query(User).filter(User.org_id == org_id, User.is_admin.is_(True)).update(
            {"storage_mb": usage_mb(0)})


# ---- many orgs like one ------------------------------------------------------------------------

def copy_orgs(session: Session, copies: dict[str, str]) -> None:
    """For each new org id (key), the rows of its template org (value) as they are, the template's
    id replaced by the new one wherever it is written (the org's name, its e-mail addresses, its
    entitlements document); generated ids left to the database, in the template's order; what is
    derived from a replaced value derived again (an entitlements version's digest). What
    services.orgs.create_org writes for the new id, at the cost of a few bulk inserts per table.
    Ids must not contain one another (a template id inside another id would be replaced in it).
    Refused for a template with rows that point at its own generated ids (invoices, allocated
    storage units): those would need their new ids mapped."""
    templates = sorted(set(copies.values()))
    for table in Base.metadata.sorted_tables:   # parents first
        key = _org_key(table)
        if key is None:
            continue
        rows: dict[str, list[dict[str, Any]]] = {template: [] for template in templates}
        for row in session.execute(select(table).where(key.in_(templates)).order_by(*table.primary_key.columns)):
            found = dict(row._mapping)
            rows[found[key.name]].append(found)
        if not any(rows.values()):
            continue
        _refuse_generated_references(table, rows)
        generated = table.autoincrement_column
        session.execute(insert(table), list(_batch_rows(table, rows, copies, generated)))


def _batch_rows(table: Table, rows: dict[str, list[dict[str, Any]]], copies: dict[str, str],
                generated: Column | None) -> Iterator[dict[str, Any]]:
    for new_id, template in copies.items():
        for row in rows[template]:
            copied = {name: _replaced(value, template, new_id) for name, value in row.items()
                      if generated is None or name != generated.name}
            if table is EntitlementVersion.__table__:
                copied["digest"] = digest(content_of(copied["document"]))
            yield copied


def _org_key(table: Table) -> Column | None:
    return table.c.id if table is Organisation.__table__ else table.c.get("org_id")


def _refuse_generated_references(table: Table, rows: dict[str, list[dict[str, Any]]]) -> None:
    if table is Invoice.__table__:
        raise ValueError("copy_orgs: a template with invoices (their lines, payments and PDFs point at their ids)")
    if table is EntitlementVersion.__table__:
        # The digest is derived again for the copy: the rule must be the one the template was written with.
        for row in (r for template_rows in rows.values() for r in template_rows):
            if row["digest"] != digest(content_of(row["document"])):
                raise ValueError("copy_orgs: an entitlements digest this copy would not derive the same way")
    for column in table.c:
        for fk in column.foreign_keys:
            if fk.column is fk.column.table.autoincrement_column and any(
                    row[column.name] is not None for template_rows in rows.values() for row in template_rows):
                raise ValueError(f"copy_orgs: {table.name}.{column.name} points at a generated id")


def _replaced(value: Any, old: str, new: str) -> Any:
    if isinstance(value, str):
        return value.replace(old, new) if old in value else value   # an enum member stays one
    if isinstance(value, dict):
        return {_replaced(k, old, new): _replaced(v, old, new) for k, v in value.items()}
    if isinstance(value, list):
        return [_replaced(v, old, new) for v in value]
    return value
