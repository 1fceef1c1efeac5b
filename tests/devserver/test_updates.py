"""A refused Update leaves no trace in the workflow history (the validator rejects it before
anything is written). Only the real server shows this exactly: the rejected update rides a
speculative workflow task that the server throws away."""

import pytest

from domain import requests as rq
from tests.devserver.support import GOOD, eventually
from workers.runtime.operations import OperationRefused

pytestmark = [pytest.mark.devserver, pytest.mark.postgres]


async def history(handle) -> list:
    return [event async for event in handle.fetch_history_events()]


async def test_refused_update_adds_no_event_to_history(dev_stack):
    stack = dev_stack
    async with stack.worker():
        org_id = await stack.create_org(plan="standard", cycle="monthly", card=GOOD, start=await stack.now())
        handle = stack.handle(org_id)
        await eventually(lambda: stack.state(org_id))  # loaded and idle until the renewal next month
        before = await history(handle)

        with pytest.raises(OperationRefused) as refused:
            await stack.send(org_id, rq.AddLicencesRequest(count=-2, requested_by="admin@x.test"))
        assert refused.value.type == "invalid_input"
        assert refused.value.message == "count: must be at least 1, got -2"

        after = await history(handle)
        assert len(after) == len(before), [e.event_type for e in after[len(before):]]
        assert [e.event_id for e in after] == [e.event_id for e in before]
        described = await handle.describe()
        assert described.raw_description.workflow_execution_info.history_length == len(before)
        assert (await stack.state(org_id)).snapshot.licences == 1

        # Control: an accepted Update does add events (accepted, activities, completed).
        outcome = await stack.send(org_id, rq.AddLicencesRequest(count=1, requested_by="admin@x.test"))
        assert outcome.payment == "succeeded"
        grown = await history(handle)
        kinds = {e.WhichOneof("attributes") for e in grown[len(before):]}
        assert {"workflow_execution_update_accepted_event_attributes",
                "workflow_execution_update_completed_event_attributes"} <= kinds
        assert (await stack.state(org_id)).snapshot.licences == 2
