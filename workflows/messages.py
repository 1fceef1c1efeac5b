"""Workflow inputs, update results and the state query's answer."""

from dataclasses import dataclass, field
from datetime import datetime

from domain.subscription import OrgSnapshot

TASK_QUEUE = "billing-orgs"


def workflow_id_for(org_id: str) -> str:
    """Stable: one lifecycle workflow per org, found again from the org id alone."""
    return f"org-{org_id}"


@dataclass(frozen=True)
class OrgWorkflowInput:
    org_id: str


@dataclass(frozen=True)
class ChangeOutcome:
    message: str
    status: str
    invoice: str | None = None
    amount: int | None = None
    payment: str | None = None  # succeeded | declined | None when nothing was charged
    decline_reason: str | None = None


@dataclass(frozen=True)
class OrgStateView:
    snapshot: OrgSnapshot
    next_action: str
    next_action_at: datetime | None = None
    runs_since_start: int = 0
    history_length: int = 0
    notes: list[str] = field(default_factory=list)
