"""What an activity failure tells Temporal and the worker's log.

Every failure leaves an activity as one short line naming the cause and the component ("database
unreachable: connection refused at 127.0.0.1:5432"), so the Temporal UI's pending activity says
what is wrong: no SQL, no parameters, no chained exceptions (a 7.7 KB SQLAlchemy error once
exceeded Temporal's failure size limit and the UI showed only that). Business refusals and data
errors are final; outages are retried by the workflow's INFRA_RETRY until they pass. The worker's
log gets a failure's traceback once, at the first attempt, and one line per retry after it; an
outage gets no traceback, and its lines are summarised (activities/outages.py)."""

import asyncio
import functools
import logging
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar

from temporalio import activity
from temporalio.exceptions import ApplicationError, CancelledError
from temporalio.worker import ActivityInboundInterceptor, ExecuteActivityInput, Interceptor

from domain.errors import DomainError

P = ParamSpec("P")
R = TypeVar("R")

# Longest message a failure carries: the UI shows it whole, and it stays far below the limit.
MESSAGE_LIMIT = 400


class Unavailable(Exception):
    """A service the activities depend on did not answer: retried until it does. Subclasses name
    the component, as the failure's message and type show it."""
    component = "service"
    type = "service_unavailable"


@dataclass(frozen=True)
class Places:
    """Where this worker reaches each component: a failure's message names it."""
    database: str = ""
    smtp: str = ""
    temporal: str = ""


def database_address(url: str) -> str:
    """host:port of a PostgreSQL URL, the file of a SQLite one; never the password."""
    from sqlalchemy.engine import make_url
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return parsed.database or ":memory:"
    return f"{parsed.host or 'localhost'}:{parsed.port or 5432}"


def as_application_error(err: DomainError) -> ApplicationError:
    return ApplicationError(err.message, type=err.type, non_retryable=True)


def one_line(text: str, limit: int = MESSAGE_LIMIT) -> str:
    """Text from outside (a server's answer, an exception) as one line, cut at `limit`."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _first_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[0] if lines else ""


def _at(place: str) -> str:
    return f" at {place}" if place else ""


# A database error that running the statement again cannot fix: a value out of range or too
# long, a broken constraint, a value the driver cannot send (a NUL character, an integer beyond
# 64 bits). Connection errors and timeouts (OperationalError) are not among them: retried.
def _is_data_error(err: BaseException) -> bool:
    from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, StatementError
    if isinstance(err, (DataError, IntegrityError, OverflowError, UnicodeError)):
        return True
    return isinstance(err, StatementError) and not isinstance(err, DBAPIError)


def data_error(err: BaseException) -> ApplicationError:
    """One line naming the cause, within Temporal's failure size limit; no SQL, no parameters."""
    cause = getattr(err, "orig", None) or err
    text = " ".join(str(cause).split())[:300]
    return ApplicationError(f"the database refused a value: {type(cause).__name__}: {text}", type="data_error",
                            non_retryable=True)


def data_errors_are_final(fn: Callable[P, R]) -> Callable[P, R]:
    """A data error is not an outage: the activity fails at once with its cause (an Update
    answers with it and the org's lock is released) instead of being retried forever. An
    integrity error is tried once more first: two attempts of one activity racing to record
    the same business key is a conflict the second run resolves by finding the first's outcome."""
    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        from sqlalchemy.exc import IntegrityError
        try:
            try:
                return fn(*args, **kwargs)
            except IntegrityError:
                return fn(*args, **kwargs)
        except Exception as err:
            if _is_data_error(err):
                raise data_error(err) from err   # the cause goes to the log, never to Temporal
            raise
    return wrapper


_LIBPQ_PREFIX = re.compile(r'^connection to server (?:at|on) .*? failed:\s*')


def database_unavailable(err: BaseException) -> bool:
    """The database did not answer (connection lost or refused, a timeout, the server shutting
    down): the same statement may succeed a moment later."""
    from sqlalchemy.exc import DisconnectionError, InterfaceError, OperationalError, TimeoutError as PoolTimeout
    return isinstance(err, (OperationalError, InterfaceError, DisconnectionError, PoolTimeout))


def database_reason(err: BaseException) -> str:
    """Why, in the driver's first line: its later lines and SQLAlchemy's add hints, the SQL and its
    parameters."""
    cause = getattr(err, "orig", None) or err
    reason = _LIBPQ_PREFIX.sub("", _first_line(str(cause))).removeprefix("FATAL:").strip()
    return reason[:1].lower() + reason[1:] if reason else type(cause).__name__


def _database_failure(err: BaseException, place: str) -> ApplicationError:
    cause = getattr(err, "orig", None) or err
    reason = database_reason(err)
    if database_unavailable(err):
        # With an SQLSTATE the server answered (statement timeout, deadlock, shutting down).
        heading = "database unavailable" if getattr(cause, "pgcode", None) else "database unreachable"
        return ApplicationError(one_line(f"{heading}: {reason}{_at(place)}"), type="database_unavailable")
    return ApplicationError(one_line(f"database error: {type(cause).__name__}: {reason}{_at(place)}"),
                            type="database_error")


def _smtp_failure(err: BaseException, place: str) -> ApplicationError:
    from aiosmtplib.errors import SMTPResponseException, SMTPServerDisconnected, SMTPTimeoutError
    if isinstance(err, SMTPResponseException):
        return ApplicationError(one_line(f"SMTP server refused: {err.code} {err.message}{_at(place)}"),
                                type="smtp_refused")
    errno = getattr(err.__cause__, "errno", None)
    if errno:
        reason = os.strerror(errno).lower()
    elif isinstance(err, SMTPTimeoutError):
        reason = "timeout"
    elif isinstance(err, SMTPServerDisconnected):
        reason = "server disconnected"
    else:
        reason = _first_line(str(err)) or type(err).__name__
    return ApplicationError(one_line(f"SMTP unreachable: {reason}{_at(place)}"), type="smtp_unavailable")


def readable_failure(err: BaseException, places: Places = Places()) -> ApplicationError:
    """The one translation of an exception leaving an activity into what Temporal records."""
    from aiosmtplib.errors import SMTPException
    from sqlalchemy.exc import SQLAlchemyError
    from temporalio.service import RPCError
    if isinstance(err, ApplicationError):
        return err
    if isinstance(err, DomainError):
        return as_application_error(err)
    if isinstance(err, SQLAlchemyError):
        return _database_failure(err, places.database)
    if isinstance(err, SMTPException):
        return _smtp_failure(err, places.smtp)
    if isinstance(err, Unavailable):
        return ApplicationError(one_line(f"{err.component}: {_first_line(str(err)) or 'unavailable'}"),
                                type=err.type)
    if isinstance(err, RPCError):
        return ApplicationError(one_line(f"Temporal unreachable: {err.status.name.lower()}: {err.message}"
                                          f"{_at(places.temporal)}"), type="temporal_unavailable")
    # Anything else is a bug or an outage nobody named yet: retried, as the SDK would.
    return ApplicationError(one_line(str(err)) or type(err).__name__, type=type(err).__name__)


# Set on a failure the interceptor has logged: the SDK's own warning for it (with a traceback,
# at every attempt) is then dropped.
_REPORTED = "_billing_failure_reported"


class _SdkFailureLogDropped(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        raised = record.exc_info[1] if record.exc_info else None
        return not (record.__dict__.get("__temporal_error_identifier") == "ActivityFailure"
                    and getattr(raised, _REPORTED, False))


def outage_of(failure_type: str) -> str | None:
    """The component a failure of this type says is out, or None: not an outage (a bug, a
    refusal, bad data). An outage is retried until the component answers again, and the worker's
    log summarises it (activities/outages.py) instead of writing each failure."""
    if failure_type == "smtp_refused":
        return "SMTP server"
    if failure_type.endswith("_unavailable"):
        component = failure_type.removesuffix("_unavailable")
        return {"smtp": "SMTP server", "temporal": "Temporal"}.get(component, component.replace("_", " "))
    return None


def _log(failure: ApplicationError, raised: BaseException) -> None:
    info = activity.info()
    cause = raised.__cause__ if isinstance(raised, ApplicationError) and raised.__cause__ else raised
    what = f"{info.activity_type} attempt {info.attempt} failed ({failure.type}"
    # The outage summary (activities/outages.py) reads these; an outage gets no traceback.
    failure_info = {"failure_type": failure.type, "failure_message": failure.message}
    if isinstance(cause, DomainError):   # a refusal is an answer, not a fault
        activity.logger.info("%s, final): %s", what, failure.message, extra=failure_info)
    elif failure.non_retryable:
        activity.logger.warning("%s, final): %s", what, failure.message, exc_info=cause, extra=failure_info)
    elif info.attempt == 1 and outage_of(failure.type) is None:
        activity.logger.warning("%s, retried): %s", what, failure.message, exc_info=cause, extra=failure_info)
    else:
        activity.logger.warning("%s, retried): %s", what, failure.message, extra=failure_info)


class _ReadableFailuresInbound(ActivityInboundInterceptor):
    def __init__(self, next: ActivityInboundInterceptor, places: Places,
                 succeeded: Callable[[str, float], None] | None) -> None:
        super().__init__(next)
        self.places, self.succeeded = places, succeeded

    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        began = time.monotonic()
        try:
            result = await self.next.execute_activity(input)
            if self.succeeded is not None:
                self.succeeded(activity.info().activity_type, began)
            return result
        except (CancelledError, asyncio.CancelledError):
            raise   # the SDK reports a cancellation by its type
        except Exception as err:
            failure = readable_failure(err, self.places)
            _log(failure, err)
            setattr(failure, _REPORTED, True)
            # No chained cause (its text, SQL included, would reach Temporal) and no frames of the
            # activity's own: the log has them.
            raise failure.with_traceback(None) from None


class ReadableFailures(Interceptor):
    """Applies `readable_failure` and its logging to every activity of the worker it is given to,
    local activities included. `succeeded` hears the type of every activity that completes and when
    its attempt began, on time.monotonic (the outage summary: an outage ends when what failed for it
    succeeds in an attempt begun after it started)."""

    def __init__(self, places: Places = Places(), succeeded: Callable[[str, float], None] | None = None) -> None:
        self.places, self.succeeded = places, succeeded
        sdk_log = logging.getLogger("temporalio.activity")
        if not any(isinstance(f, _SdkFailureLogDropped) for f in sdk_log.filters):
            sdk_log.addFilter(_SdkFailureLogDropped())

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _ReadableFailuresInbound(next, self.places, self.succeeded)
