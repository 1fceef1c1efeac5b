"""The renewal storm's orgs made in bulk (bench/storm_setup.create_orgs: one org per card through
services.orgs.create_org, the others copies of its rows) are the orgs create_org makes one by
one: the same rows in every table and the same state, ids aside."""

from datetime import datetime, timezone
from typing import Any

import pytest
from sqlalchemy import select

from bench.storm_setup import create_orgs, create_storm_org, declines
from db.models import Base, EntitlementVersion, Invoice, Organisation
from db.snapshots import load_states
from domain.cards import sandbox_tokenise
from domain.entitlements import content_of, digest
from domain.policy import Policy
from domain.states import InvoiceKind, InvoiceStatus
from tests.support.bulk import copy_orgs

pytestmark = pytest.mark.postgres

AT = datetime(2026, 11, 7, 20, 18, 35, 999983, tzinfo=timezone.utc)
N, DECLINE_SHARE = 12, 0.25


def rows_of(session, prefix: str) -> dict[str, list[dict[str, Any]]]:
    """Every table's rows of the orgs whose ids start with `prefix`, the prefix taken out of every
    value and the generated ids left out, in id order."""
    found = {}
    for table in Base.metadata.sorted_tables:
        key = table.c.id if table is Organisation.__table__ else table.c.get("org_id")
        if key is None:
            continue
        generated = table.autoincrement_column
        rows = session.execute(select(table).where(key.startswith(prefix)).order_by(key, *table.primary_key.columns))
        found[table.name] = [{name: unprefixed(value, prefix) for name, value in row._mapping.items()
                              if generated is None or name != generated.name} for row in rows]
    return found


def unprefixed(value: Any, prefix: str) -> Any:
    if isinstance(value, str):
        return value.replace(prefix, "ORG") if prefix in value else value
    if isinstance(value, dict):
        return {unprefixed(k, prefix): unprefixed(v, prefix) for k, v in value.items()}
    if isinstance(value, list):
        return [unprefixed(v, prefix) for v in value]
    return value


def test_bulk_orgs_are_what_create_org_writes(pg_db, catalog):
    policy = Policy()
    bulk = create_orgs(pg_db, catalog, policy, N, DECLINE_SHARE, "bulk", sandbox_tokenise, at=AT)
    with pg_db.transaction() as session:
        for i in range(N):
            card = sandbox_tokenise("4000000000000341" if declines(i, DECLINE_SHARE) else "4242424242424242")
            create_storm_org(session, f"ref{i:05d}", card, catalog, policy, AT)

    with pg_db.transaction() as session:
        made, reference = rows_of(session, "bulk"), rows_of(session, "ref")
        for table, rows in reference.items():
            # The digest is of content naming the org: compared through the rule that derives it.
            assert made[table] == rows or table == "entitlement_versions", table
        assert [{**r, "digest": None} for r in made["entitlement_versions"]] == \
            [{**r, "digest": None} for r in reference["entitlement_versions"]]
        assert len(made["organisations"]) == N and len(made["users"]) == 2 * N and len(made["org_events"]) == 4 * N
        versions = session.scalars(select(EntitlementVersion).where(EntitlementVersion.org_id.startswith("bulk")))
        assert all(v.digest == digest(content_of(v.document)) for v in versions)
        declining = [s for s in load_states(session, bulk, policy) if s.card_last4 == "0341"]
        assert [s.org_id for s in declining] == [f"bulk{i:05d}" for i in range(N) if declines(i, DECLINE_SHARE)]

        states = {s.org_id: s for s in load_states(session, select(Organisation.id).where(
            Organisation.id.startswith("bulk") | Organisation.id.startswith("ref")), policy)}
        for i in range(N):
            copied, one_by_one = states[f"bulk{i:05d}"], states[f"ref{i:05d}"]
            assert unprefixed(repr(copied), "bulk") == unprefixed(repr(one_by_one), "ref")


def test_a_template_with_invoices_is_refused(pg_db, catalog):
    """Its invoice lines and payments point at its invoices' generated ids: a copy could not keep
    them, so nothing is copied."""
    with pg_db.transaction() as session:
        create_storm_org(session, "tmpl00000", sandbox_tokenise("4242424242424242"), catalog, Policy(), AT)
        session.add(Invoice(number="INV-tmpl00000-1", org_id="tmpl00000", business_key="tmpl00000:renewal",
                            kind=InvoiceKind.RENEWAL, status=InvoiceStatus.OPEN, currency="USD", subtotal=600,
                            total=600, created_at=AT))
    with pytest.raises(ValueError, match="invoices"), pg_db.transaction() as session:
        copy_orgs(session, {"copy00001": "tmpl00000"})
    with pg_db.transaction() as session:
        assert session.get(Organisation, "copy00001") is None
