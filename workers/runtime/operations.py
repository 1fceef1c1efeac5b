"""Sending change requests to an org's workflow, as the CLI and the simulator do, and turning
the workflow's refusals into one clear message."""

import asyncio
import re
from dataclasses import dataclass
from typing import Any

from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from domain.limits import cut, shown
from workflows.messages import ChangeOutcome, workflow_id_for
from workflows.updates import HANDING_OVER, update_for
from workflows.starter import org_handle


@dataclass
class OperationRefused(Exception):
    message: str
    type: str = "invalid_request"

    def __str__(self) -> str:
        return self.message


def refusal_from(err: BaseException) -> OperationRefused:
    cause = err
    while cause is not None and not isinstance(cause, ApplicationError):
        cause = cause.__cause__
    if isinstance(cause, ApplicationError):
        return OperationRefused(cause.message, cause.type or "invalid_request")
    return OperationRefused(str(err))


def namespace_missing(err: RPCError) -> bool:
    """NOT_FOUND for the namespace itself ("Namespace x is not found"), not for the workflow."""
    return err.status == RPCStatusCode.NOT_FOUND and re.match(r"namespace\b.*\bnot found", err.message, re.I) is not None


async def send_operation(client: Client, org_id: str, request: Any, hand_over_wait: float = 30.0) -> ChangeOutcome:
    """Send one operation's request (a domain.requests dataclass) as its Update; while the org's
    workflow hands over to a new run (a second or two), it is sent again, for up to
    `hand_over_wait` seconds."""
    update = update_for(request)
    handle = org_handle(client, org_id)
    deadline = asyncio.get_running_loop().time() + hand_over_wait
    while True:
        try:
            return await handle.execute_update(update, request, result_type=ChangeOutcome)
        except WorkflowUpdateFailedError as err:
            refusal = refusal_from(err)
            if refusal.type != HANDING_OVER or asyncio.get_running_loop().time() > deadline:
                raise refusal from None
        except RPCError as err:
            if err.status == RPCStatusCode.NOT_FOUND and not namespace_missing(err):
                raise OperationRefused(f"unknown org {shown(org_id)}: no workflow {cut(workflow_id_for(org_id))} in namespace "
                                       f"{client.namespace!r} (check BILLING_TEMPORAL_NAMESPACE; an org saved "
                                       "without its workflow gets one from `billing reconcile`)",
                                       "unknown_org") from None
            raise  # the namespace itself missing: a setting to fix, not a refusal
        await asyncio.sleep(0.2)
