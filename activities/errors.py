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
