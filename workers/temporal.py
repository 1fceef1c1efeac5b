"""Connecting to Temporal: a local dev server, a self-hosted cluster, or Temporal Cloud (API
key or mTLS)."""

from pathlib import Path

from temporalio.client import Client, TLSConfig
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig

from workers.config import Settings


def _read(path: str | None) -> bytes | None:
    return Path(path).read_bytes() if path else None


def tls_config(settings: Settings) -> TLSConfig | bool:
    if settings.temporal_tls_cert_path or settings.temporal_tls_key_path:
        return TLSConfig(client_cert=_read(settings.temporal_tls_cert_path),
                         client_private_key=_read(settings.temporal_tls_key_path),
                         server_root_ca_cert=_read(settings.temporal_tls_ca_path))
    return bool(settings.temporal_tls or settings.temporal_api_key)


def metrics_runtime(port: int) -> Runtime:
    return Runtime(telemetry=TelemetryConfig(metrics=PrometheusConfig(bind_address=f"0.0.0.0:{port}")))


async def connect(settings: Settings, runtime: Runtime | None = None) -> Client:
    return await Client.connect(settings.temporal_address, namespace=settings.temporal_namespace,
                                tls=tls_config(settings), api_key=settings.temporal_api_key, runtime=runtime)
