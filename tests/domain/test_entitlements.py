"""What the mail platform is told, as a pure function of the org's state (DOMAIN.md "What the
mail platform is told"), and the JSON Schema every document keeps to."""

import json
from pathlib import Path

import jsonschema
import pytest

from domain.catalog import parse_catalog, load_catalog
from domain.entitlements import EntitledUser, blocked_users, content_of, entitlements, event, next_version, versioned, digest
from domain.errors import CatalogError
from domain.states import OrgStatus
from domain.subscription import Subscribers
from tests.domain.builders import active_org, utc

SCHEMA = json.loads((Path(__file__).parents[2] / "docs" / "entitlements.schema.json").read_text())
CATALOG = load_catalog()
AT = utc(2026, 4, 2, 9)
USERS = [EntitledUser("b@acme.test", 0, True, "storage"), EntitledUser("a@acme.test", 25)]


def valid(document: dict) -> dict:
    jsonschema.Draft202012Validator(SCHEMA, format_checker=jsonschema.FormatChecker()).validate(document)
    return document


def test_a_trial_is_told_the_trials_plan_and_trialing():
    trial = active_org(status=OrgStatus.TRIALING, plan="professional", cycle=None, renews_at=None, period_start=None,
                       ledger=[])
    doc = valid(versioned(entitlements(trial, USERS, CATALOG), 1, AT))
    assert (doc["plan"]["id"], doc["status"]) == ("professional", "trialing")
    assert doc["plan"]["features"] == {"archiving": True, "ediscovery": True, "smime": True, "web_only": False,
                                       "domains": None, "user_cap": None}
    assert [(u["email"], u["quota_gb"]) for u in doc["users"]] == [("a@acme.test", 125), ("b@acme.test", 100)]


def test_the_free_plan_is_web_only_with_one_domain_five_users_and_says_who_is_blocked_and_why():
    free = active_org(status=OrgStatus.FREE, plan="free", licences=0, cycle=None, renews_at=None,
                      period_start=None, ledger=[], addons=[])
    doc = valid(versioned(entitlements(free, USERS, CATALOG), 7, AT))
    assert doc["plan"]["features"] == {"archiving": False, "ediscovery": False, "smime": False, "web_only": True,
                                       "domains": 1, "user_cap": 5}
    assert doc["users"][1] == {"email": "b@acme.test", "quota_gb": 5, "blocked": True, "blocked_reason": "storage"}
    assert blocked_users(doc) == ["b@acme.test"]
    assert (doc["org_id"], doc["version"], doc["as_of"]) == ("acme", 7, "2026-04-02T09:00:00+00:00")


def test_licences_subscribers_and_addons_are_told():
    org = active_org(licences=12, tier_contacts=5000, subscribers=Subscribers(5000, 300),
                     addons=["support_essentials"])
    doc = valid(versioned(entitlements(org, USERS, CATALOG), 3, AT))
    assert doc["licences"] == 12
    assert doc["subscribers"] == {"tier": 5000, "contacts": 5300, "subscribed": 5000, "awaiting_upgrade": 300}
    assert doc["addons"] == ["support_essentials"]
    assert valid(versioned(entitlements(active_org(), [], CATALOG), 1, AT))["subscribers"]["tier"] is None


def test_a_reason_is_told_only_for_a_blocked_user():
    doc = entitlements(active_org(), [EntitledUser("x@acme.test", 0, False, "storage")], CATALOG)
    assert doc["users"] == [{"email": "x@acme.test", "quota_gb": 30, "blocked": False, "blocked_reason": None}]


def test_a_new_version_only_when_the_content_changed_and_versions_only_go_up():
    first = entitlements(active_org(), USERS, CATALOG)
    assert next_version(None, None, first) == 1
    assert next_version(4, digest(first), first) is None
    cut = entitlements(active_org(licences=3), USERS, CATALOG)
    assert next_version(4, digest(first), cut) == 5
    assert content_of(versioned(cut, 5, AT)) == cut


def test_the_webhook_event_carries_the_whole_document():
    doc = versioned(entitlements(active_org(), USERS, CATALOG), 2, AT)
    assert event(doc) == {"type": "entitlements.updated", "timestamp": "2026-04-02T09:00:00+00:00", "data": doc}


def test_the_schema_refuses_a_document_missing_a_field_or_with_a_bad_reason():
    doc = versioned(entitlements(active_org(), USERS, CATALOG), 1, AT)
    with pytest.raises(jsonschema.ValidationError):
        valid({key: value for key, value in doc.items() if key != "version"})
    with pytest.raises(jsonschema.ValidationError):
        valid({**doc, "users": [{**doc["users"][0], "blocked_reason": "unpaid"}]})


@pytest.mark.parametrize("features, message", [
    ({"archiving": "yes"}, "catalog.plans.free.features.archiving: must be true or false"),
    ({"domains": 0}, "catalog.plans.free.features.domains: must be a positive integer"),
    ({"imap": True}, "catalog.plans.free.features.imap: unknown feature"),
])
def test_a_catalog_with_a_bad_feature_is_refused_naming_it(features, message):
    raw = {"plans": {"free": {"quota_gb": 5, "features": features,
                              "prices": {c: {"monthly": 0, "yearly": 0} for c in ("USD", "IDR")}}}}
    with pytest.raises(CatalogError, match=message.replace(".", r"\.")):
        parse_catalog(raw)
