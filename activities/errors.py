"""Turning business refusals into Temporal failures that are never retried."""

import functools
from collections.abc import Awaitable, Callable
from typing import ParamSpec, TypeVar

from temporalio.exceptions import ApplicationError

from domain.errors import DomainError

P = ParamSpec("P")
R = TypeVar("R")


def as_application_error(err: DomainError) -> ApplicationError:
    return ApplicationError(err.message, type=err.type, non_retryable=True)


def business_errors_are_final(fn: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
    @functools.wraps(fn)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return await fn(*args, **kwargs)
        except DomainError as err:
            raise as_application_error(err) from err
    return wrapper


def business_errors_are_final_sync(fn: Callable[P, R]) -> Callable[P, R]:
    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except DomainError as err:
            raise as_application_error(err) from err
    return wrapper


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
                raise data_error(err) from None
            raise
    return wrapper
