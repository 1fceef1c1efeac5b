"""The worker process (`python -m workers.runtime.worker`) and what every process here shares: the
Temporal client and its converter, the settings (BILLING_*), logs, gauges, the reconciliation
schedule, the Update sender, the bundled binaries."""
