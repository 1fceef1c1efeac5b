"""What the mail platform is told (DOMAIN.md "What the mail platform is told"): an org's
entitlements as one document, derived from its state, its users and the catalog.

The document's `content` (everything but `version` and `as_of`) is a pure function of the
state; a decision makes a new version exactly when the content differs from the latest stored
one, so versions only go up and two versions never say the same thing. Field names are stable:
docs/entitlements.schema.json describes them and the tests hold documents to it."""

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from domain.catalog import FEATURE_FLAGS, Catalog
from domain.periods import require_utc
from domain.subscription import OrgSnapshot

EVENT_TYPE = "entitlements.updated"


@dataclass(frozen=True)
class EntitledUser:
    email: str
    allocated_gb: int          # the storage units allocated to them
    blocked: bool = False
    blocked_reason: str | None = None


def entitlements(state: OrgSnapshot, users: list[EntitledUser], catalog: Catalog) -> dict[str, Any]:
    """The org's entitlements without `version` and `as_of`. During a trial the plan is the
    trial's and the status `trialing` (the state says so already)."""
    plan = catalog.plan(state.plan)
    features: dict[str, Any] = {flag: getattr(plan.features, flag) for flag in FEATURE_FLAGS}
    features.update(domains=plan.features.domains, user_cap=plan.user_cap)
    tier = state.tier_contacts or None
    return {
        "org_id": state.org_id,
        "status": str(state.status),
        "plan": {"id": plan.id, "name": plan.name, "quota_gb": plan.quota_gb, "features": features},
        "licences": state.licences,
        "users": [{"email": user.email, "quota_gb": plan.quota_gb + user.allocated_gb, "blocked": user.blocked,
                   "blocked_reason": user.blocked_reason if user.blocked else None}
                  for user in sorted(users, key=lambda u: u.email)],
        "subscribers": {"tier": tier, "contacts": state.subscribers.total,
                        "subscribed": state.subscribers.subscribed, "awaiting_upgrade": state.subscribers.awaiting},
        "addons": sorted(state.addons),
    }


def versioned(content: dict[str, Any], version: int, as_of: datetime) -> dict[str, Any]:
    """The document as delivered: the content with its version and the moment it was made."""
    return {"org_id": content["org_id"], "version": version, "as_of": require_utc(as_of).isoformat(),
            **{key: value for key, value in content.items() if key != "org_id"}}


def content_of(document: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in document.items() if key not in ("version", "as_of")}


def digest(content: dict[str, Any]) -> str:
    """A fingerprint of the content: comparing it tells a change without reading the stored document."""
    return hashlib.sha256(json.dumps(content, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def next_version(latest: int | None, latest_digest: str | None, content: dict[str, Any]) -> int | None:
    """The version a decision gives the content, or None when it says what the latest says."""
    if latest is not None and latest_digest == digest(content):
        return None
    return (latest or 0) + 1


def blocked_users(document: dict[str, Any]) -> list[str]:
    return [user["email"] for user in document["users"] if user["blocked"]]


def event(document: dict[str, Any]) -> dict[str, Any]:
    """The webhook's body: the event `entitlements.updated` carrying the whole document."""
    return {"type": EVENT_TYPE, "timestamp": document["as_of"], "data": document}
