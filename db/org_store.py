"""The orgs one unit of work holds, over its session (cosmicpython's repository and unit of
work): `load` reads an org once (its state, what else a step may read, the answer its business
key was given) and remembers it; `commit` writes what each org it handed out decided and has not
written: each kind of row once (its invoices, the org's rows and storage verdicts, the opening's
end, the audit entries with the answer by the key), the entitlements' next version last."""

import json

from sqlalchemy.orm import Session
from temporalio.converter import AdvancedJSONEncoder, value_to_type

from db.entitlements import store_entitlements
from db.events import record_decision
from db.invoices import write_invoices
from db.orgs import end_opening
from db.snapshots import StoredOrg, load_state, recorded_outcome
from db.state import persist
from domain.catalog import Catalog
from domain.org import Answer, Org
from domain.policy import Policy


class OrgStore:
    def __init__(self, session: Session, catalog: Catalog, policy: Policy) -> None:
        self.session, self.catalog, self.policy = session, catalog, policy
        self.seen: list[Org] = []

    def load(self, org_id: str, key: str) -> Org:
        """The org as a step with business `key` decides on, read before anything is written."""
        state, stored = load_state(self.session, org_id, self.policy), StoredOrg(self.session, org_id)
        recorded = recorded_outcome(self.session, org_id, key)
        org = Org(state, stored, None if recorded is None else value_to_type(Answer, recorded))
        self.seen.append(org)
        return org

    def commit(self) -> None:
        """Write what the orgs loaded here decided and have not written, then flush."""
        for org in self.seen:
            if org.uncommitted is not None:
                self._write(org)
        self.session.flush()

    def _write(self, org: Org) -> None:
        kept, state, session = org.uncommitted, org.state, self.session
        assert kept is not None
        decision, org_id, key, at = kept.decision, state.org_id, kept.ctx.key, kept.ctx.now
        invoice, invoice_entries = write_invoices(session, org_id, key, decision, state.currency, at)
        written, verdict_entries = persist(session, org_id, decision, kept.verdicts,
                                           invoice.number if invoice else None, at, self.policy)
        if decision.opening_paid:
            end_opening(session, org_id, "paid")
        answer = org.written(written, invoice)
        record_decision(session, org_id, at, decision.events + invoice_entries + verdict_entries, key, kept.step,
                        json.loads(json.dumps(answer, cls=AdvancedJSONEncoder)))
        store_entitlements(session, written, self.catalog, at)
