"""Temporal or the database out of reach, in one line naming the setting to check (exit 3)."""

import re


def _cause(err: BaseException) -> str:
    text = " ".join(str(err).split())
    # The Rust core's connect error nests the OS's message: "Connection refused" says it all.
    found = re.search(r'message: "([^"]+)"', text)
    return found.group(1) if found else text[:160]


def unavailable(err: BaseException) -> str | None:
    """The one-line message for an error that means Temporal or the database cannot be used as
    configured; None for any other error."""
    from sqlalchemy.exc import DBAPIError
    from temporalio.service import RPCError, RPCStatusCode
    from workers.config import Settings
    from workers.operations import namespace_missing
    config = Settings()
    if isinstance(err, RuntimeError) and "client connect" in str(err) or \
            isinstance(err, RPCError) and err.status in (RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED):
        return (f"Temporal unreachable at {config.temporal_address} ({_cause(err.__cause__ or err)}); "
                "check BILLING_TEMPORAL_ADDRESS")
    if isinstance(err, RPCError) and err.status in (RPCStatusCode.UNAUTHENTICATED, RPCStatusCode.PERMISSION_DENIED):
        return (f"Temporal at {config.temporal_address} refused the client ({_cause(err)}); check "
                "BILLING_TEMPORAL_API_KEY or BILLING_TEMPORAL_TLS_CERT_PATH / BILLING_TEMPORAL_TLS_KEY_PATH")
    if isinstance(err, RPCError) and namespace_missing(err):
        return (f"Temporal at {config.temporal_address} has no namespace {config.temporal_namespace!r} "
                f"({_cause(err)}); check BILLING_TEMPORAL_NAMESPACE")
    if isinstance(err, DBAPIError):
        cause = _cause(getattr(err, "orig", err))
        if "no such table" in cause or ("relation" in cause and "does not exist" in cause):
            return f"the database has no billing tables ({cause}): run `billing db upgrade`, or check BILLING_DATABASE_URL"
        if err.connection_invalidated or type(err).__name__ == "OperationalError":
            return f"database unreachable ({cause}); check BILLING_DATABASE_URL"
    return None
