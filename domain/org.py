"""One org as its unit of work holds it (cosmicpython's aggregate): the state loaded once, what
else a step may read, and the answer its business key was given, if it was. `take` decides a
step (pure) and keeps the decision; the unit of work's commit (db.org_store) writes what was
kept and hands back what it wrote (`written`): the state as stored and the invoice it numbered."""

from dataclasses import dataclass, field

from domain.decisions import Context, Decision, Effect, UserChangeKind
from domain.steps import Step, Stored, decided
from domain.storage import Verdict
from domain.subscription import OrgSnapshot


@dataclass(frozen=True)
class InvoiceRef:
    """An invoice as a step's answer names it, numbered when it was written."""
    number: str
    total: int
    currency: str


@dataclass(frozen=True)
class Answer:
    """What a step answers, recorded by its business key: a step retried after its commit
    answers this again, effects included, instead of deciding on a state it has changed."""
    message: str
    invoice: InvoiceRef | None = None
    effects: list[Effect] = field(default_factory=list)
    users_added: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class KeptDecision:
    """A step's decision, kept for the commit: which step, in what context (its business key and
    time), and the verdicts of the storage checks it carried out."""
    step: str
    ctx: Context
    decision: Decision
    verdicts: list[Verdict]

    @property
    def users_blocked(self) -> int:
        return sum(len(verdict.blocked) for verdict in self.verdicts)


class Org:
    def __init__(self, state: OrgSnapshot, stored: Stored, answered: Answer | None) -> None:
        self.loaded = self.state = state   # `state` becomes the state as written once committed
        self.stored = stored
        self.answered = answered           # the answer recorded by the key: the step is decided already
        self.kept: KeptDecision | None = None

    def take(self, step: Step, ctx: Context) -> None:
        """Decide `step` on the state loaded, unless its business key was answered already."""
        if self.answered is None:
            decision, verdicts = decided(step, self.state, self.stored, ctx)
            self.kept = KeptDecision(step.name, ctx, decision, verdicts)

    @property
    def uncommitted(self) -> KeptDecision | None:
        """The decision taken and not yet written."""
        return self.kept if self.answered is None else None

    def written(self, written: OrgSnapshot, invoice: InvoiceRef | None) -> Answer:
        """Told by the commit that the kept decision is written (`written`: the state as stored,
        `invoice`: the one it issued): the state becomes it, and the step's answer is made."""
        assert self.kept is not None, "nothing was decided"
        decision = self.kept.decision
        self.state = written
        self.answered = Answer(decision.message, invoice, decision.effects,
                               [change.email for change in decision.users if change.kind == UserChangeKind.ADD])
        return self.answered
