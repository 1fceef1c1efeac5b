"""Temporal or the database out of reach, in one line naming the setting to check (exit 3)."""

import re


def _cause(err: BaseException) -> str:
    text = " ".join(str(err).split())
    # The Rust core's connect error nests the OS's message: "Connection refused" says it all.
    found = re.search(r'message: "([^"]+)"', text)
    if found:
        return found.group(1)
    # A name that does not resolve: `ConnectError("dns error", Custom { ..., error: "failed to lookup ..." })`.
    found = re.search(r'error: "([^"]+)"', text)
    if found:
        kind = re.search(r'ConnectError\("([^"]+)"', text)
        return f"{kind.group(1)}: {found.group(1)}" if kind else found.group(1)
    return text if len(text) <= 160 else text[:159] + "…"   # never cut mid-way without saying so


def temporal_target(config) -> tuple[str, str]:  # noqa: ANN001
    """The address and namespace the client uses (a BILLING_TEMPORAL_* setting, else the
    `temporal` CLI's profile and TEMPORAL_* variables, else the defaults)."""
    from workers.runtime.temporal import connect_options
    try:
        options = connect_options(config)
    except Exception:  # noqa: BLE001  (an unreadable profile is reported where it is read)
        return config.temporal_address, config.temporal_namespace
    return options["target_host"], options["namespace"]


def _setting(config, name: str) -> str:  # noqa: ANN001
    """The setting to check: the BILLING_ one when given, else also the `temporal` CLI's."""
    if f"temporal_{name}" in config.model_fields_set:
        return f"BILLING_TEMPORAL_{name.upper()}"
    return f"BILLING_TEMPORAL_{name.upper()} or TEMPORAL_{name.upper()} (or the temporal CLI profile)"


def unavailable(err: BaseException) -> str | None:
    """The one-line message for an error that means Temporal or the database cannot be used as
    configured; None for any other error."""
    from sqlalchemy.exc import DBAPIError
    from temporalio.service import RPCError, RPCStatusCode
    from workers.runtime.config import Settings
    from workers.runtime.operations import namespace_missing
    config = Settings()
    if isinstance(err, RuntimeError) and "client connect" in str(err) or \
            isinstance(err, RPCError) and err.status in (RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED):
        address, _ = temporal_target(config)
        return f"Temporal unreachable at {address} ({_cause(err.__cause__ or err)}); check {_setting(config, 'address')}"
    if isinstance(err, RPCError) and err.status in (RPCStatusCode.UNAUTHENTICATED, RPCStatusCode.PERMISSION_DENIED):
        address, _ = temporal_target(config)
        return (f"Temporal at {address} refused the client ({_cause(err)}); check {_setting(config, 'api_key')} "
                "or BILLING_TEMPORAL_TLS_CERT_PATH / BILLING_TEMPORAL_TLS_KEY_PATH")
    if isinstance(err, RPCError) and namespace_missing(err):
        address, namespace = temporal_target(config)
        return (f"Temporal at {address} has no namespace {namespace!r} ({_cause(err)}); "
                f"check {_setting(config, 'namespace')}")
    if isinstance(err, DBAPIError):
        cause = _cause(getattr(err, "orig", err))
        if "no such table" in cause or ("relation" in cause and "does not exist" in cause):
            return f"the database has no billing tables ({cause}): run `billing db upgrade`, or check BILLING_DATABASE_URL"
        if err.connection_invalidated or type(err).__name__ == "OperationalError":
            return f"database unreachable ({cause}); check BILLING_DATABASE_URL"
    return None
