"""What the workflow reads of an org to start: its state, the catalog as its checks see it, its
users' roster."""

from db.session import Database
from db.snapshots import load_state, roster
from domain.catalog import Catalog
from domain.policy import Policy
from domain.subscription import CatalogFacts, OrgSnapshot, catalog_facts
from domain.users import Roster


def org_context(db: Database, org_id: str, catalog: Catalog, policy: Policy) -> tuple[OrgSnapshot, CatalogFacts, Roster]:
    with db.transaction() as session:
        state = load_state(session, org_id, policy)
        return state, catalog_facts(catalog, state.currency), roster(session, org_id)
