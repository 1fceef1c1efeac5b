"""The small HTTP service (`python -m workers.api`): what reaches the pipeline from outside over
HTTP (the payment gateway's webhooks) and what the mail platform reads from it. Its own process,
beside the workers: a slow or failing caller never holds a worker's slots.

Routes under /v1 need the API key (`BILLING_API_KEY`, or `BILLING_API_KEY_FILE` for a mounted
secret) unless they authenticate their caller another way (a gateway's signed webhook); /healthz
and /readyz are open, for the orchestrator's probes."""
