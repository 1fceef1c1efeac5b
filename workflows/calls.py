"""How the org workflow calls its activities: a step's first as local activities, then as regular
ones retried until an outage passes; a change within CHANGE_TIMEOUT, so an outage answers the
Update instead of holding the org. Workflow code: deterministic, no I/O of its own."""

from datetime import timedelta
from typing import Any, Callable

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError
from temporalio.exceptions import TimeoutError as ActivityTimedOut

with workflow.unsafe.imports_passed_through():
    from activities.billing import BillingActivities
    from activities.messages import OrgContext, StepResult

# Database and SMTP outages are retried until they pass: the workflow waits, nothing is lost.
INFRA_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), backoff_coefficient=2.0,
                          maximum_interval=timedelta(minutes=1))
ACTIVITY_TIMEOUT = timedelta(seconds=60)
# A change holds the org's lock while it is decided: an outage answers the Update after this
# long instead of holding every later request (and the renewal) behind it.
CHANGE_TIMEOUT = timedelta(minutes=2)
# A step's activities run first as local activities, inside the workflow task that decided them:
# a renewal then needs no task-queue round trip (in a month-end storm the queue, not the work, is
# what keeps orgs waiting). One that still fails after LOCAL_ATTEMPTS goes on as a regular
# activity, retried until the outage passes and shown in the UI's pending activities.
LOCAL_ATTEMPTS = RetryPolicy(initial_interval=timedelta(seconds=1), backoff_coefficient=2.0, maximum_attempts=3)


# E-mails, and the invoice PDFs they carry, go to a task queue of their own (since 1.1), served
# by workers that may run elsewhere and are rate-limited to the SMTP provider's rate: a storm of
# receipts never holds a charge, nor the local activity slots and CPU of the org's worker.
DOCUMENTS_QUEUE_SUFFIX = "-documents"


def documents_queue(org_queue: str) -> str:
    """The documents' task queue beside an org queue (the workflow's and the worker's rule)."""
    return f"{org_queue}{DOCUMENTS_QUEUE_SUFFIX}"


async def send(method: Callable[..., Any], arg: Any, summary: str) -> Any:
    """A regular activity on the documents' queue, retried until an SMTP or database outage passes;
    idempotent by the e-mail's key (its outbox row)."""
    return await workflow.execute_activity_method(
        method, arg, task_queue=documents_queue(workflow.info().task_queue), start_to_close_timeout=ACTIVITY_TIMEOUT,
        retry_policy=INFRA_RETRY, summary=summary)


async def load_org(org_id: str) -> OrgContext:
    """Every run starts from the database, the source of truth. A local activity: a read that
    takes milliseconds needs no task queue round trip, and every renewal starts a run, so
    in a month-end storm this is one server task in six saved."""
    return await workflow.execute_local_activity_method(
        BillingActivities.load_org, org_id, start_to_close_timeout=ACTIVITY_TIMEOUT,
        retry_policy=INFRA_RETRY, summary="load org")


async def execute(method: Callable[..., Any], arg: Any, summary: str, limit: timedelta | None = None) -> Any:
    """Every effect and step is idempotent by business key (the decision's key, the charge's
    org, invoice and attempt, the e-mail's key), so a local attempt that timed out may be
    followed by a regular one. `limit`: inside an Update (a charge while a person waits), the
    regular attempts end after this long, and the Update is answered `unavailable`; the step's
    key makes the next try of it (the next retry) read back what this one did."""
    try:
        return await workflow.execute_local_activity_method(
            method, arg, start_to_close_timeout=ACTIVITY_TIMEOUT, retry_policy=LOCAL_ATTEMPTS,
            summary=summary)
    except (ActivityError, ApplicationError, ActivityTimedOut) as err:
        # A local activity's last failure arrives as the activity's own error, not wrapped.
        cause = err.cause if isinstance(err, ActivityError) else err
        if isinstance(cause, ApplicationError) and cause.non_retryable:
            raise  # a refusal or a data error: a regular attempt would end the same way
        failure = ({"failure_type": cause.type, "failure_message": cause.message}
                   if isinstance(cause, ApplicationError) and cause.type else {})   # an outage's, counted
        workflow.logger.warning("%s: local attempts failed (%s); retrying as a regular activity",
                                summary, cause, extra=failure)
    if limit is None:
        return await workflow.execute_activity_method(method, arg, start_to_close_timeout=ACTIVITY_TIMEOUT,
                                                      retry_policy=INFRA_RETRY, summary=summary)
    try:
        return await workflow.execute_activity_method(method, arg, start_to_close_timeout=ACTIVITY_TIMEOUT,
                                                      schedule_to_close_timeout=limit, retry_policy=INFRA_RETRY,
                                                      summary=summary)
    except ActivityError as err:
        raise _unavailable(err, f"{summary} not known within {limit.seconds // 60} minutes",
                           "it is read back at the next retry; `billing org show` tells the org's state",
                           "the payment gateway") from None


async def decide(method: Callable[..., Any], arg: Any, summary: str, what: str) -> StepResult:
    """A change (or a batch of reports) decided on the stored state. A refusal or a data error
    (a value the database refuses) fails at once, as it is; an outage answers the request as
    `unavailable` within CHANGE_TIMEOUT (Temporal gives up once the next retry would pass it),
    naming the last failure: either way the lock is released and the org keeps its timers."""
    try:
        return await workflow.execute_activity_method(
            method, arg, start_to_close_timeout=ACTIVITY_TIMEOUT, schedule_to_close_timeout=CHANGE_TIMEOUT,
            retry_policy=INFRA_RETRY, summary=summary)
    except ActivityError as err:
        raise _unavailable(err, f"{what} not done", "try again later (`billing org show` tells whether it was "
                                                    "applied)", "the database") from None


def _unavailable(err: ActivityError, what: str, then: str, silent: str) -> ApplicationError:
    """A refusal or a data error is the answer as it is; an outage or a timeout answers
    `unavailable`, naming the last attempt's failure."""
    cause = err.cause
    if isinstance(cause, ApplicationError) and cause.non_retryable:
        return cause
    # A retryable failure (an outage) or a timeout, whose own cause is the last attempt's failure.
    last = cause.cause if isinstance(cause, ActivityTimedOut) and cause.cause is not None else cause
    reason = (" ".join(last.message.split()) if isinstance(last, ApplicationError) and last.message
              else f"{silent} did not answer within {CHANGE_TIMEOUT.seconds // 60} minutes")
    return ApplicationError(f"{what}: {reason}; {then}", type="unavailable")
