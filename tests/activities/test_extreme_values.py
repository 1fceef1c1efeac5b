"""Every field of every request type, given an extreme value (inf, nan, 10**30, negative, 10,000
characters, non-ASCII, NUL, a lone surrogate, the wrong type): the request is refused (by
Temporal's data converter or the validator's check) or applied by the decision activity on
PostgreSQL. It is never left pending: the activity raises nothing Temporal would retry.
(issue 14: an accepted value the database cannot store used to be retried forever.)"""

import itertools
from dataclasses import fields, replace
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from sqlalchemy import select
from temporalio.converter import DataConverter
from temporalio.exceptions import ApplicationError

from activities.billing import BillingActivities
from activities.errors import readable_failure
from activities.messages import ChangeInput, SentReport
from db.models import Subscription
from db.orgs import set_card
from services.orgs import create_org
from db.snapshots import StoredOrg, load_state
from domain import reports
from domain import requests as rq
from domain.cards import sandbox_tokenise
from domain.errors import ERROR_TYPES, DomainError
from domain.onboarding import NewOrg, NewUser, paid_for_one_cycle, validate_new_org
from domain.operations import OPERATIONS
from domain.policy import Policy
from domain.subscription import catalog_facts

START = datetime(2026, 1, 31, 9, 0, tzinfo=timezone.utc)
NOW = START + timedelta(days=10)   # 19 days before the renewal: inside the downgrade window
STAFF = "rina@billing.test"
ADMIN = "admin@ext.test"

# A request each operation accepts on the org below; one field at a time is made extreme.
BASELINE = {
    "upgrade": rq.UpgradeRequest("professional"),
    "add_licences": rq.AddLicencesRequest(1),
    "add_user": rq.AddUserRequest("new@ext.test", 1.0),
    "buy_storage": rq.BuyStorageRequest(25, 1),
    "remove_storage": rq.RemoveStorageRequest(25, 1),
    "allocate_storage": rq.AllocateStorageRequest(ADMIN, 25),
    "auto_allocate": rq.AutoAllocateRequest("on", requested_by=ADMIN),
    "set_usage": rq.SetUsageRequest(ADMIN, 2.5),
    "import_usage": rq.ImportUsageRequest([(ADMIN, 2.5), ("b@ext.test", 1.0)]),
    "buy_addon": rq.BuyAddonRequest("support_essentials"),
    "remove_addon": rq.RemoveAddonRequest("support_essentials"),
    "change_tier": rq.ChangeTierRequest(2000),
    "set_contacts": rq.SetContactsRequest(1500),
    "switch_to_yearly": rq.SwitchToYearlyRequest(),
    "switch_to_monthly": rq.SwitchToMonthlyRequest(),      # refused on this monthly org: its fields checked first
    "cancel_switch_to_monthly": rq.CancelSwitchToMonthlyRequest(),
    "update_card": rq.UpdateCardRequest("tok_visa_4242", "visa", "4242"),
    "request_downgrade": rq.DowngradeRequest("mail_lite_10", requested_by=STAFF, reason="cost"),
    "cancel_downgrade": rq.CancelDowngradeRequest(requested_by=STAFF, reason="call"),
    "cancel": rq.CancelRequest(requested_by=ADMIN),
    "undo_cancel": rq.UndoCancelRequest(requested_by=ADMIN),
    "retry_payment": rq.RetryPaymentRequest(requested_by=STAFF, reason="call"),
    "resolve_escalation": rq.ResolveEscalationRequest("extend", requested_by=STAFF, reason="call"),
}

EXTREMES = [float("inf"), float("-inf"), float("nan"), 1e300, 10**30, -10**30, 2**63, -1, 0, True, None, "",
            "x" * 10_000, "é" * 300, "用户@例子.广告", "a\x00b", "\ud800", "  ", [], {"a": 1},
            [("x" * 300 + "@ext.test", 1.0)], [(ADMIN, float("nan"))], [(ADMIN, 10**30)], [[ADMIN]]]
CASES = [(name, item.name) for name in sorted(BASELINE) for item in fields(BASELINE[name])]
CONVERTER = DataConverter.default.payload_converter


def test_every_operation_has_a_baseline():
    assert set(BASELINE) == set(OPERATIONS)


@pytest.fixture
def org(pg_db, catalog):
    policy = Policy(billing_staff=(STAFF,))
    new = validate_new_org(NewOrg(id="ext", name="Extreme Co", admin_email=ADMIN, plan="standard", cycle="monthly",
                                  licences=4, users=[NewUser("b@ext.test", 1.0)]), catalog)
    with pg_db.transaction() as session:
        create_org(session, paid_for_one_cycle(new, START, "tests"), catalog, policy, START)
        card = sandbox_tokenise("4242424242424242")
        set_card(session, "ext", card.token, card.brand, card.last4)
    return pg_db, BillingActivities(pg_db, catalog, policy), policy


def _version(db) -> int:
    with db.transaction() as session:
        return session.scalar(select(Subscription.version).where(Subscription.org_id == "ext"))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=st.sampled_from(CASES), value=st.sampled_from(EXTREMES), serial=st.integers(0, 10**9))
def test_an_extreme_value_is_refused_or_applied_never_left_pending(org, catalog, case, value, serial):
    db, activities, policy = org
    name, field = case
    operation = OPERATIONS[name]
    request = replace(BASELINE[name], **{field: value})
    try:  # as an Update's argument crosses Temporal: JSON, then the request's types
        [payload] = CONVERTER.to_payloads([request])
        request = CONVERTER.from_payloads([payload], [operation.request])[0]
    except Exception:  # noqa: BLE001  ("Failed decoding arguments": refused at the door)
        return
    with db.transaction() as session:
        state = load_state(session, "ext", policy)
        try:
            operation.validate(state, policy, catalog_facts(catalog, state.currency), request, NOW,
                               StoredOrg(session, "ext"))
        except DomainError:
            return  # refused by the validator: the workflow answers at once
    before = _version(db)
    try:
        activities.apply_change(ChangeInput("ext", request, key=f"update:ext:{serial}", at=NOW))
    except (DomainError, ApplicationError) as raised:
        # A refusal decided on the stored state, or a data error: final either way, never retried
        # (as the worker reports it: activities.errors.readable_failure).
        err = readable_failure(raised)
        assert err.non_retryable and (err.type in ERROR_TYPES or err.type == "data_error"), err
        assert _version(db) == before


@pytest.mark.parametrize("name", sorted(BASELINE))
def test_a_change_crosses_the_history_as_json_and_arrives_as_its_operation_s_request(name):
    request = BASELINE[name]
    [payload] = CONVERTER.to_payloads([ChangeInput("ext", request, key="k", at=NOW)])
    [arrived] = CONVERTER.from_payloads([payload], [ChangeInput])
    # As the Update's argument arrives (a usage file's rows: lists, not tuples).
    [sent] = CONVERTER.from_payloads(CONVERTER.to_payloads([request]), [OPERATIONS[name].request])
    assert (arrived.operation, arrived.request) == (name, sent)
    assert type(arrived.request) is OPERATIONS[name].request
    if name in reports.REPORT_OPERATIONS:   # a report a signal brought, queued across runs
        [payload] = CONVERTER.to_payloads([SentReport(request)])
        assert CONVERTER.from_payloads([payload], [SentReport]) == [SentReport(sent)]


def test_the_extremes_cover_every_field_kind():
    kinds = {item.metadata.get("kind") for request in BASELINE.values() for item in fields(request)}
    assert kinds == set(rq.Kind) - {rq.Kind.CARD}  # a card number never reaches the workflow
    assert len(list(itertools.product(CASES, EXTREMES))) > 1000
