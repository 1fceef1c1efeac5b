"""Connecting to Temporal: a local dev server, a self-hosted cluster, or Temporal Cloud (API
key or mTLS).

Where to connect comes from the `temporal` CLI's own settings (temporalio.envconfig: the
TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TEMPORAL_API_KEY, TEMPORAL_TLS* variables and the profiles
of its config file, chosen by TEMPORAL_PROFILE and TEMPORAL_CONFIG_FILE); a BILLING_TEMPORAL_*
setting, when given, wins over them."""

import dataclasses
import logging
from pathlib import Path
from typing import Any

from temporalio.api.failure.v1 import Failure
from temporalio.client import Client, TLSConfig
from temporalio.converter import DataConverter, DefaultFailureConverter, PayloadConverter
from temporalio.envconfig import ClientConfigProfile
from temporalio.exceptions import ApplicationError
from temporalio.runtime import (LogForwardingConfig, LoggingConfig, PrometheusConfig, Runtime, TelemetryConfig,
                                TelemetryFilter)

from workers.runtime.config import Settings, address_problem

_TLS_SETTINGS = {"temporal_tls", "temporal_tls_cert_path", "temporal_tls_key_path", "temporal_tls_ca_path",
                 "temporal_api_key"}


class TemporalConfigError(ValueError):
    """The `temporal` CLI's settings cannot be read (a missing profile, a malformed file)."""


class ReadableFailureConverter(DefaultFailureConverter):
    """An ApplicationError is raised on purpose with a message that names its cause (a refusal,
    an outage): it goes out without its Python stack trace, which the Temporal UI would show
    under the message, server file paths and all. Any other exception keeps its trace: that
    is a bug, and the trace is what finds it."""

    def to_failure(self, exception: BaseException, payload_converter: PayloadConverter, failure: Failure) -> None:
        super().to_failure(exception, payload_converter, failure)
        if isinstance(exception, ApplicationError):
            # Also the copy of a failure received from an activity, which carries its causes.
            node: Failure | None = failure
            while node is not None:
                if node.HasField("application_failure_info"):
                    node.stack_trace = ""
                node = node.cause if node.HasField("cause") else None


DATA_CONVERTER = dataclasses.replace(DataConverter.default, failure_converter_class=ReadableFailureConverter)


def _read(path: str | None) -> bytes | None:
    return Path(path).read_bytes() if path else None


def tls_config(settings: Settings) -> TLSConfig | bool:
    if settings.temporal_tls_cert_path or settings.temporal_tls_key_path:
        return TLSConfig(client_cert=_read(settings.temporal_tls_cert_path),
                         client_private_key=_read(settings.temporal_tls_key_path),
                         server_root_ca_cert=_read(settings.temporal_tls_ca_path))
    return bool(settings.temporal_tls or settings.temporal_api_key)


def connect_options(settings: Settings, environ: dict[str, str] | None = None) -> dict[str, Any]:
    """Client.connect's arguments: the `temporal` CLI's profile (file and TEMPORAL_* variables),
    then each BILLING_TEMPORAL_* setting given; what neither gives, the settings' defaults.
    `environ`: the variables to read instead of the process's."""
    try:
        options: dict[str, Any] = dict(ClientConfigProfile.load(override_env_vars=environ)
                                       .to_client_connect_config())
    except Exception as err:  # the SDK's bridge raises RuntimeError for a bad file or profile
        raise TemporalConfigError(f"cannot read the Temporal client config (check TEMPORAL_CONFIG_FILE and "
                                  f"TEMPORAL_PROFILE): {err}") from None
    given = settings.model_fields_set
    for option, setting in (("target_host", "temporal_address"), ("namespace", "temporal_namespace"),
                            ("api_key", "temporal_api_key")):
        if setting in given or option not in options:
            options[option] = getattr(settings, setting)
    problem = address_problem(str(options["target_host"]))
    if problem:   # from TEMPORAL_ADDRESS or the CLI's profile (BILLING_TEMPORAL_ADDRESS is checked as it is read)
        raise TemporalConfigError(f"TEMPORAL_ADDRESS (or the temporal CLI profile's address): {problem}")
    if given & _TLS_SETTINGS or "tls" not in options:
        options["tls"] = tls_config(settings)
    return options


def worker_runtime(metrics_port: int) -> Runtime:
    """The worker's: metrics on `metrics_port`, and the SDK core's warnings through Python's
    logging, so they take the worker's format (no ANSI colours in a file: the core writes them
    itself otherwise) and its outage summary (activities/outages.py: a retried poll, a slow
    workflow task during an outage)."""
    core_log = LoggingConfig(filter=TelemetryFilter(core_level="WARN", other_level="ERROR"),
                             forwarding=LogForwardingConfig(logger=logging.getLogger("temporalio.core"),
                                                            prepend_target_on_message=False))
    return Runtime(telemetry=TelemetryConfig(metrics=PrometheusConfig(bind_address=f"0.0.0.0:{metrics_port}"),
                                             logging=core_log))


async def connect(settings: Settings, runtime: Runtime | None = None) -> Client:
    """A client whose workers send refusals without stack traces (ReadableFailureConverter)."""
    options = connect_options(settings)
    return await Client.connect(options.pop("target_host"), **options, data_converter=DATA_CONVERTER,
                                runtime=runtime)
