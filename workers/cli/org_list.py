"""`billing org list`: a visibility query over the search attributes each org's workflow
publishes (workflows/search_attributes.py), or the same filter on the database when Temporal,
or its search attributes, are not there."""

import asyncio
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable

from temporalio.common import SearchAttributeKey

from workflows import search_attributes as sa

TEMPORAL = "temporal"
DATABASE = "database"


@dataclass(frozen=True)
class OrgRow:
    org_id: str
    name: str | None
    status: str | None
    plan: str | None
    cycle: str | None          # "none" on a trial or the free plan, as the search attribute says
    large_account: bool | None
    dunning_attempt: int | None
    next_action_at: datetime | None
    scheduled_change: str | None = None   # what the renewal changes, in words (ScheduledChange); None: nothing

    @classmethod
    def of(cls, org_id: str, name: str | None, attribute: Callable[[SearchAttributeKey], Any]) -> "OrgRow":
        """A row from the org's search attributes: those visibility holds, or those its workflow
        would publish."""
        return cls(org_id, name, attribute(sa.ORG_STATUS), attribute(sa.PLAN), attribute(sa.BILLING_CYCLE),
                   attribute(sa.LARGE_ACCOUNT), attribute(sa.DUNNING_ATTEMPT), attribute(sa.NEXT_ACTION_AT),
                   attribute(sa.SCHEDULED_CHANGE))


@dataclass(frozen=True)
class OrgFilter:
    """Every filter given must hold; an empty tuple or None filters nothing."""
    statuses: tuple[str, ...] = ()
    plans: tuple[str, ...] = ()
    cycles: tuple[str, ...] = ()
    large: bool | None = None
    next_action_before: datetime | None = None

    def visibility_query(self, task_queue: str) -> str:
        # Values come from enums or the catalog's plan ids (checked before), never raw text.
        parts = ['WorkflowType = "OrgLifecycle"', 'ExecutionStatus = "Running"', f'TaskQueue = "{task_queue}"',
                 f"{sa.ORG_ID.name} IS NOT NULL"]
        for key, values in ((sa.ORG_STATUS, self.statuses), (sa.PLAN, self.plans), (sa.BILLING_CYCLE, self.cycles)):
            if values:
                parts.append(f"{key.name} IN ({', '.join(f'{chr(34)}{v}{chr(34)}' for v in values)})")
        if self.large is not None:
            parts.append(f"{sa.LARGE_ACCOUNT.name} = {'true' if self.large else 'false'}")
        if self.next_action_before is not None:
            moment = self.next_action_before.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
            parts.append(f'{sa.NEXT_ACTION_AT.name} < "{moment}"')
        return " AND ".join(parts)

    def matches(self, row: OrgRow) -> bool:
        """The same filter on a row the database gave."""
        return ((not self.statuses or row.status in self.statuses) and (not self.plans or row.plan in self.plans)
                and (not self.cycles or row.cycle in self.cycles)
                and (self.large is None or bool(row.large_account) == self.large)
                and (self.next_action_before is None
                     or (row.next_action_at is not None and row.next_action_at < self.next_action_before)))


@dataclass(frozen=True)
class Listing:
    source: str                       # TEMPORAL or DATABASE
    orgs: list[OrgRow]
    fallback_reason: str | None = None


def list_orgs(settings, wanted: OrgFilter) -> Listing:
    """Visibility first; the database when Temporal cannot answer (unreachable, or its
    visibility store lacks our search attributes)."""
    from temporalio.service import RPCError, RPCStatusCode
    from workers.cli.outage import unavailable
    try:
        orgs = asyncio.run(_from_visibility(settings, wanted))
        return Listing(TEMPORAL, sorted(orgs, key=lambda row: row.org_id))
    except RPCError as err:
        if err.status != RPCStatusCode.INVALID_ARGUMENT:
            reason = unavailable(err)
            if reason is None:
                raise
        else:
            reason = (f"Temporal's visibility store does not know the billing search attributes "
                      f"({' '.join(err.message.split())[:160]}); run `billing temporal register-search-attributes`")
    except Exception as err:  # noqa: BLE001
        reason = unavailable(err)
        if reason is None:
            raise
    return Listing(DATABASE, _from_database(settings, wanted), reason)


async def _from_visibility(settings, wanted: OrgFilter) -> list[OrgRow]:
    from workers.runtime.temporal import connect
    client = await connect(settings)
    rows = []
    async for execution in client.list_workflows(wanted.visibility_query(settings.temporal_task_queue)):
        found = execution.typed_search_attributes
        org_id = found.get(sa.ORG_ID) or execution.id.removeprefix("org-")
        # OrgName since workflow version 7; the memo of a workflow that has not published it yet.
        name = found.get(sa.ORG_NAME) or await execution.memo_value("org_name", None)
        rows.append(OrgRow.of(org_id, name or None, found.get))
    return rows


def _from_database(settings, wanted: OrgFilter) -> list[OrgRow]:
    """What the workflow would publish, computed from the stored states (domain.lifecycle), read
    together."""
    from db.queries import org_states
    from domain.lifecycle import next_step
    from workers.cli.common import database
    now = datetime.now(timezone.utc)
    policy = settings.policy
    with database(settings.database_url).transaction() as session:
        states = org_states(session, policy, wanted.statuses, wanted.plans)
    rows = [OrgRow.of(state.org_id, state.name, sa.published(state, next_step(state, policy, now).due).get)
            for state in states]
    return [row for row in rows if wanted.matches(row)]
