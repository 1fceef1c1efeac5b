"""Stripe down (the localstripe process stopped) while a renewal is charged: an outage, retried
until the server is back, never a decline; then the renewal is paid once."""

import asyncio
import time
from datetime import timedelta

from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.workflowservice.v1 import DescribeWorkflowExecutionRequest

from tests.stripe.conftest import intents_for
from tests.stripe.test_charges import VISA, invoices, payments

OUTAGE_SECONDS = 12


async def pending_failure(stack, org_id: str) -> str:
    described = await stack.client.workflow_service.describe_workflow_execution(DescribeWorkflowExecutionRequest(
        namespace=stack.client.namespace, execution=WorkflowExecution(workflow_id=f"org-{org_id}")))
    return " ".join(p.last_failure.message for p in described.pending_activities)


async def test_stripe_down_is_an_outage_retried_not_a_decline(stack, stripe_gateway, localstripe, on_server,
                                                             smtp_sink):
    start = await stack.now()
    async with stack.worker():
        org_id = await stack.create_org(plan="professional", cycle="monthly", card_details=VISA, start=start)
        renewal = (await stack.state(org_id)).snapshot.renews_at
        localstripe.stop()
        down_at = time.monotonic()
        await stack.advance_to(renewal + timedelta(minutes=5))
        failure = ""
        while time.monotonic() - down_at < OUTAGE_SECONDS:
            failure = await pending_failure(stack, org_id) or failure
            assert payments(stack.db, org_id) == [] and not smtp_sink.for_org(org_id, "payment_failed")
            await asyncio.sleep(0.5)
        localstripe.start()
        await stack.advance_to(await stack.now() + timedelta(minutes=2))   # the next retry is due
        state = await stack.state(org_id)

    print("pending failure:", failure)
    assert failure.startswith("payment gateway: ")
    assert [status for _, status, _ in invoices(stack.db, org_id)] == ["paid"]
    [intent] = intents_for(on_server, org_id)
    assert intent.status == "succeeded"
    assert [(attempt, outcome) for attempt, outcome, _, _ in payments(stack.db, org_id)] == [(1, "succeeded")]
    assert state.snapshot.status == "active" and state.snapshot.dunning_attempts == 0
    assert not smtp_sink.for_org(org_id, "payment_failed")
