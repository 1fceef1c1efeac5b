"""Custom search attributes: what operations teams filter on in the Temporal UI."""

from temporalio.common import SearchAttributeKey

ORG_ID = SearchAttributeKey.for_keyword("OrgId")
ORG_STATUS = SearchAttributeKey.for_keyword("OrgStatus")
PLAN = SearchAttributeKey.for_keyword("Plan")
BILLING_CYCLE = SearchAttributeKey.for_keyword("BillingCycle")
NEXT_ACTION_AT = SearchAttributeKey.for_datetime("NextActionAt")
DUNNING_ATTEMPT = SearchAttributeKey.for_int("DunningAttempt")
LARGE_ACCOUNT = SearchAttributeKey.for_bool("LargeAccount")

ALL = (ORG_ID, ORG_STATUS, PLAN, BILLING_CYCLE, NEXT_ACTION_AT, DUNNING_ATTEMPT, LARGE_ACCOUNT)
