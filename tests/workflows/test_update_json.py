"""The Updates as billing staff meet them in the Temporal UI's "Send an Update" dialog: each
description carries the JSON to paste, a misspelt or missing field is named, a refusal is its
message alone, and an accepted downgrade says what was scheduled, in the result and in the
org's search attributes."""

import json
from datetime import timedelta

import pytest
from temporalio.client import WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.workflow import _Definition

from domain.errors import InvalidInput
from domain.limits import Limits
from domain.operations import OPERATIONS
from domain.requests import Kind
from tests.devserver.support import current_details
from workflows import search_attributes as sa
from workflows.org import OrgWorkflow
from workflows.update_json import read_request

GOOD = "4242424242424242"
STAFF = "rina@billing.test"
UPDATES = _Definition.must_from_class(OrgWorkflow).updates


def pasted_json(description: str) -> dict:
    start = description.index("JSON: ") + len("JSON: ")
    value, _ = json.JSONDecoder().raw_decode(description, start)
    return value


@pytest.mark.parametrize("name", sorted(OPERATIONS))
def test_each_update_description_carries_json_that_its_update_accepts(name, catalog):
    operation, description = OPERATIONS[name], UPDATES[name].description
    assert description.startswith(operation.description)
    request = read_request(operation, pasted_json(description))
    operation.check_fields(request, Limits())  # within every bound, a staff action's reason given
    for field in request.__dataclass_fields__.values():
        assert f"{field.name}" in description.split("Fields (* required): ")[1]
        if field.metadata.get("kind") == Kind.PLAN:
            assert ", ".join(catalog.plans) in description


def test_every_operation_is_an_update():
    # ... and one more: `opening`, by which `billing org create` waits for a new customer's first
    # payment (it changes nothing; the org's creation is not an operation on an org).
    assert {name for name in UPDATES if name is not None} == set(OPERATIONS) | {"opening"}
    assert UPDATES[None].validator is not None  # and one refusing the names it does not have


async def test_an_unknown_update_name_is_refused_in_one_line_naming_the_updates(stack):
    """Issue 22: the SDK's answer was a RuntimeError, retryable, from a handler that does not exist."""
    async with stack.worker():
        org_id = await stack.create_org(plan="standard", cycle="monthly", card=GOOD)
        await stack.state(org_id)
        with pytest.raises(WorkflowUpdateFailedError) as failed:
            await send_json(stack, org_id, "downgrade", {"plan": "standard", "requested_by": STAFF})
        cause = failed.value.cause
        with pytest.raises(WorkflowUpdateFailedError) as long_name:
            await send_json(stack, org_id, "x" * 10_000, {})
        history = [event async for event in stack.handle(org_id).fetch_history_events()]
    assert isinstance(cause, ApplicationError) and cause.type == "unknown_update" and cause.non_retryable
    assert cause.message == f"unknown update 'downgrade'; the updates are: {', '.join(OPERATIONS)}"
    assert "\n" not in cause.message and cause.failure.stack_trace == ""
    assert long_name.value.cause.message.startswith("unknown update 'xxxxxxxxxxxxxxxxxxxxxxxxxxx... (10000 characters)")
    assert not [e for e in history if e.HasField("workflow_execution_update_accepted_event_attributes")]


def test_descriptions_mark_what_is_required():
    description = UPDATES["request_downgrade"].description
    assert ('plan* (Plan from the next cycle: one of free, mail_lite_5, mail_lite_10, mail_premium, standard, '
            'professional); licences (Licences from the next cycle); requested_by* (') in description


@pytest.mark.parametrize("payload, message", [
    ({"plann": "standard", "requested_by": STAFF}, "unknown field 'plann' (fields: plan, licences, requested_by, reason)"),
    ({"plan": "standard", "by": STAFF, "why": "x"}, "unknown fields 'by', 'why' (fields: plan, licences, requested_by, reason)"),
    ({"requested_by": STAFF}, "missing field 'plan' (fields: plan, licences, requested_by, reason)"),
    (None, "missing field 'plan' (fields: plan, licences, requested_by, reason)"),
    (["standard"], "request_downgrade takes a JSON object with the fields plan, licences, requested_by, reason; got list"),
])
def test_an_unknown_or_missing_field_is_named(payload, message):
    with pytest.raises(InvalidInput) as refused:
        read_request(OPERATIONS["request_downgrade"], payload)
    assert refused.value.message == message


async def send_json(stack, org_id: str, name: str, payload):
    """What the UI sends: the JSON typed in the dialog, no dataclass."""
    return await stack.handle(org_id).execute_update(name, payload, result_type=dict)


async def test_the_ui_path_refusal_named_field_and_scheduled_downgrade(stack):
    async with stack.worker():
        start = await stack.now()
        org_id = await stack.create_org(plan="professional", cycle="monthly", card=GOOD, start=start,
                                        name="Acme Field Services", users=[("b@x.test", 1.0)])
        renewal = (await stack.state(org_id)).snapshot.renews_at

        with pytest.raises(WorkflowUpdateFailedError) as failed:
            await send_json(stack, org_id, "request_downgrade", {"plann": "standard", "requested_by": STAFF})
        cause = failed.value.cause
        assert isinstance(cause, ApplicationError) and cause.type == "invalid_input"
        assert cause.message == "unknown field 'plann' (fields: plan, licences, requested_by, reason)"

        await stack.advance_to(renewal - timedelta(days=10))
        with pytest.raises(WorkflowUpdateFailedError) as failed:
            await send_json(stack, org_id, "request_downgrade",
                            {"plan": "standard", "requested_by": STAFF, "reason": "cheaper"})
        cause = failed.value.cause
        assert cause.type == "outside_downgrade_window"
        assert cause.message.startswith("downgrades are accepted only 15 to 30 days before the renewal date")
        assert cause.failure.stack_trace == ""  # the UI shows the message alone

        await stack.advance_to(renewal + timedelta(days=10, hours=1))  # 20 days before the next renewal
        next_renewal = (await stack.state(org_id)).snapshot.renews_at
        outcome = await send_json(stack, org_id, "request_downgrade",
                                  {"plan": "standard", "requested_by": STAFF, "reason": "cheaper"})
        assert outcome["message"] == f"downgrade to standard with 2 licences scheduled for {next_renewal:%Y-%m-%d}"

        described = await stack.handle(org_id).describe()
        attributes = described.typed_search_attributes
        assert attributes.get(sa.SCHEDULED_CHANGE) == f"downgrade to standard on {next_renewal:%Y-%m-%d}"
        assert attributes.get(sa.ORG_NAME) == "Acme Field Services"
        await stack.settle(org_id)
        assert "scheduled downgrade to standard takes effect" in await current_details(stack.handle(org_id))

        await send_json(stack, org_id, "cancel_downgrade", {"requested_by": STAFF, "reason": "kept"})
        assert (await stack.handle(org_id).describe()).typed_search_attributes.get(sa.SCHEDULED_CHANGE) is None
