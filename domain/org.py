"""One org as its unit of work holds it (cosmicpython's aggregate): the state loaded once, what
else a step may read, and the answer its business key was given, if it was. `take` decides a
step (pure) and keeps the decision; the unit of work's commit writes what was kept and hands
back what it wrote (`committed`): the state as stored and the invoice it numbered."""

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
    invoice: InvoiceRef | None
    effects: list[Effect] = field(default_factory=list)
    users_added: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Decided:
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
        self.decided: Decided | None = None

    def take(self, step: Step, ctx: Context) -> None:
        """Decide `step` on the state loaded, unless its business key was answered already."""
        if self.answered is None:
            decision, verdicts = decided(step, self.state, self.stored, ctx)
            self.decided = Decided(step.name, ctx, decision, verdicts)

    @property
    def uncommitted(self) -> Decided | None:
        """The decision taken and not yet written."""
        return self.decided if self.answered is None else None

    def committed(self, written: OrgSnapshot, invoice: InvoiceRef | None) -> Answer:
        """The decision written: `written` is the state as stored, `invoice` the one it issued."""
        assert self.decided is not None, "nothing was decided"
        decision = self.decided.decision
        self.state = written
        self.answered = Answer(decision.message, invoice, decision.effects,
                               [change.email for change in decision.users if change.kind == UserChangeKind.ADD])
        return self.answered
