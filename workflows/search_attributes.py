"""Custom search attributes: what operations teams filter on and show as columns in the
Temporal UI (docs/operations.md, "List columns and saved views")."""

from datetime import datetime
from typing import Any

from temporalio.common import SearchAttributeKey

from domain.subscription import OrgSnapshot

ORG_ID = SearchAttributeKey.for_keyword("OrgId")
ORG_STATUS = SearchAttributeKey.for_keyword("OrgStatus")
PLAN = SearchAttributeKey.for_keyword("Plan")
BILLING_CYCLE = SearchAttributeKey.for_keyword("BillingCycle")
NEXT_ACTION_AT = SearchAttributeKey.for_datetime("NextActionAt")
DUNNING_ATTEMPT = SearchAttributeKey.for_int("DunningAttempt")
LARGE_ACCOUNT = SearchAttributeKey.for_bool("LargeAccount")
# The list view shows search attributes as columns, never the memo: the name is both.
ORG_NAME = SearchAttributeKey.for_keyword("OrgName")
SCHEDULED_CHANGE = SearchAttributeKey.for_keyword("ScheduledChange")

KEYWORD_MAX = 255

ALL = (ORG_ID, ORG_STATUS, PLAN, BILLING_CYCLE, NEXT_ACTION_AT, DUNNING_ATTEMPT, LARGE_ACCOUNT, ORG_NAME,
       SCHEDULED_CHANGE)


def published(org: OrgSnapshot, next_action_at: datetime | None) -> dict[SearchAttributeKey, Any]:
    """What the org's workflow publishes (the org list's database answer computes the same)."""
    return {ORG_ID: org.org_id, ORG_STATUS: str(org.status), PLAN: org.plan,
            BILLING_CYCLE: str(org.cycle) if org.cycle else "none", NEXT_ACTION_AT: next_action_at,
            DUNNING_ATTEMPT: org.dunning_attempts, LARGE_ACCOUNT: org.large_account, ORG_NAME: org.name,
            SCHEDULED_CHANGE: scheduled_change(org)}


def scheduled_change(org: OrgSnapshot) -> str | None:
    """What the renewal will change, in words ("downgrade to standard on 2026-12-31"); None when
    nothing is scheduled. A cancellation or a downgrade comes first, so that a query can find
    them with STARTS_WITH."""
    scheduled, renews_at = org.scheduled, org.renews_at
    if renews_at is None:
        return None
    on = f"on {renews_at:%Y-%m-%d}"
    changes = []
    if scheduled.cancel:
        changes.append(f"cancel {on}")
    if scheduled.downgrade:
        licences = f"{scheduled.licences} licences" if scheduled.licences is not None else ""
        target = f"{scheduled.plan} with {licences}" if scheduled.plan and licences else scheduled.plan or licences
        changes.append(f"downgrade to {target} {on}")
    if scheduled.cycle is not None:
        changes.append(f"switch to {scheduled.cycle} {on}")
    if scheduled.tier is not None:
        changes.append(f"tier lowered to {scheduled.tier} contacts {on}")
    changes += [f"add-on {addon} ends {on}" for addon in scheduled.addons]
    changes += [f"{units.count} x {units.unit_gb} GB storage removed {on}" for units in scheduled.storage]
    text = "; ".join(changes)
    # Keyword columns of SQL visibility stores hold 255 characters.
    return (text if len(text) <= KEYWORD_MAX else text[:KEYWORD_MAX - 3] + "...") or None
