"""The org workflow's Updates, one per operation of domain.operations (the SDK finds them as the
class's methods: workflows/org.py sets them on OrgWorkflow), and how a client finds the one that
carries a request."""

from typing import Any, Callable, Protocol

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from domain.errors import DomainError
    from domain.limits import shown
    from domain.operations import OPERATIONS, Operation, operation_of
    from workflows import update_json
    from workflows.messages import ChangeOutcome

# The refusal's type while a run hands over: senders try again (workers.runtime.operations).
HANDING_OVER = "handing_over"


class TakesChanges(Protocol):
    """What the Updates need of the workflow they are methods of (OrgWorkflow)."""
    org_id: str

    async def _change(self, operation: Operation, request: Any, key: str) -> ChangeOutcome: ...

    def _arrived(self, operation: Operation, request: Any) -> Any: ...

    def _validate(self, operation: Operation, request: Any) -> None: ...


def unknown_update(name: str) -> ApplicationError:
    return ApplicationError(f"unknown update {shown(name)}; the updates are: {', '.join(OPERATIONS)}",
                            type="unknown_update", non_retryable=True)


def _read(operation: Operation, payload: Any) -> Any:
    try:
        return update_json.read_request(operation, payload)
    except DomainError as err:
        raise ApplicationError(err.message, type=err.type, non_retryable=True) from None


def _update(operation: Operation):
    """One Update per operation: a validator (a refusal leaves no trace in history) and a
    handler that has the change decided, then carries out its effects."""

    async def handler(self: TakesChanges, request: Any = None) -> ChangeOutcome:
        info = workflow.current_update_info()
        return await self._change(operation, self._arrived(operation, _read(operation, request)),
                                  f"update:{self.org_id}:{info.id}")

    def validator(self: TakesChanges, request: Any = None) -> None:
        self._validate(operation, _read(operation, request))

    handler.__name__ = validator.__name__ = operation.name
    # The argument arrives as plain JSON, read by update_json: a misspelt or missing field is
    # named in the refusal instead of the SDK's "Failed decoding arguments".
    handler.__annotations__ = {"request": Any, "return": ChangeOutcome}
    validator.__annotations__ = {"request": Any, "return": None}
    update = workflow.update(name=operation.name, description=update_json.description(operation))(handler)
    update.validator(validator)
    return update


# One Update per operation, by the operation's name.
UPDATES = {operation.name: _update(operation) for operation in OPERATIONS.values()}


def update_for(request: Any) -> Callable[..., Any]:
    """The Update that carries `request` (its operation's), for a client to send it with."""
    return UPDATES[operation_of(request).name]
