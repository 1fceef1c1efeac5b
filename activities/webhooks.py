"""Delivering entitlements to the mail platform's endpoints (domain.delivery), apart from every
org's lifecycle: one long-running activity per endpoint (workflows/delivery.py keeps it
running on a task queue of its own) reads each org's latest version the endpoint has not
confirmed and sends it, signed per the Standard Webhooks specification. A platform that is down
or slow holds up only this loop, never a renewal, a charge or an Update.

Each message's id is the version's business id (`ent_<org>_<version>`): a retry of the same
version is the same message, and a receiver that keeps the highest version per org applies it
once whatever the order."""

import asyncio
import json
import logging
import time
from dataclasses import dataclass
from datetime import datetime, timezone

import httpx
from standardwebhooks import Webhook
from temporalio import activity

from activities import metrics
from activities.errors import one_line
from db.entitlements import backlog, endpoint_row, mark_delivered, save_endpoint, undelivered, Undelivered
from db.session import Database
from domain.delivery import Endpoint, EndpointState, Webhooks
from domain.entitlements import event

log = logging.getLogger("billing.webhooks")

# How long one activity run lasts before the workflow starts the next (a fresh heartbeat
# record, a bounded history), how often an idle loop looks for new versions, how often it
# re-counts the backlog for its gauges.
RUN_SECONDS = 300.0
POLL_SECONDS = 0.25
GAUGE_SECONDS = 5.0
ENDPOINT_GONE = -1
ERROR_LIMIT = 300   # characters of an endpoint's last error kept


def message_id(org_id: str, version: int) -> str:
    return f"ent_{org_id}_{version}"


def signed(endpoint: Endpoint, document: dict, at: datetime) -> tuple[dict[str, str], bytes]:
    """The request's headers and body: every secret signs it (two while one is rotated; a
    receiver with either verifies)."""
    body = json.dumps(event(document), separators=(",", ":"), sort_keys=True).encode()
    msg_id = message_id(document["org_id"], document["version"])
    signatures = " ".join(Webhook(secret).sign(msg_id, at, body) for secret in endpoint.secrets)
    return {"webhook-id": msg_id, "webhook-timestamp": str(int(at.timestamp())),
            "webhook-signature": signatures, "content-type": "application/json"}, body


@dataclass(frozen=True)
class Sent:
    org_id: str
    version: int
    error: str | None = None   # None: the endpoint confirmed it (2xx)


def _now() -> datetime:
    return datetime.now(timezone.utc)


class DeliveryActivities:
    def __init__(self, db: Database, webhooks: Webhooks, run_seconds: float = RUN_SECONDS) -> None:
        self.db, self.webhooks, self.run_seconds = db, webhooks, run_seconds

    @activity.defn
    async def deliver_entitlements(self, endpoint_name: str) -> int:
        """Deliver until the run's time is up or the worker stops; returns how many versions
        were confirmed, or ENDPOINT_GONE when the endpoint is no longer configured (its workflow
        ends). Heartbeats each round, so a worker that dies is noticed in seconds."""
        if endpoint_name not in {e.name for e in self.webhooks.endpoints}:
            log.warning("webhook endpoint %s is no longer configured: its delivery ends", endpoint_name)
            return ENDPOINT_GONE
        endpoint = self.webhooks.endpoint(endpoint_name)
        deadline = time.monotonic() + self.run_seconds
        confirmed, counted = 0, 0.0
        limits = httpx.Limits(max_connections=self.webhooks.concurrency)
        async with httpx.AsyncClient(timeout=self.webhooks.timeout_seconds, limits=limits) as http:
            while time.monotonic() < deadline and not activity.is_worker_shutdown():
                activity.heartbeat(confirmed)
                if time.monotonic() - counted >= GAUGE_SECONDS:
                    await asyncio.to_thread(self._gauges, endpoint)
                    counted = time.monotonic()
                sent = await self.deliver_round(http, endpoint)
                if not sent:
                    await asyncio.sleep(POLL_SECONDS)
                confirmed += sum(1 for s in sent if s.error is None)
        return confirmed

    async def deliver_round(self, http: httpx.AsyncClient, endpoint: Endpoint) -> list[Sent]:
        """One round: the versions due sent at once, their outcome recorded."""
        due = await asyncio.to_thread(self._due, endpoint)
        if not due:
            return []
        sent = await asyncio.gather(*(self._post(http, endpoint, version) for version in due))
        await asyncio.to_thread(self._record, endpoint, sent)
        return sent

    def _due(self, endpoint: Endpoint) -> list[Undelivered]:
        """The next versions to send: none while the endpoint waits for its next attempt, one
        (a probe) while it is failing, else a batch."""
        now = _now()
        with self.db.transaction() as session:
            row = endpoint_row(session, endpoint.name, endpoint.url)
            if row.next_attempt_at is not None and row.next_attempt_at > now:
                return []
            return undelivered(session, endpoint.name, 1 if row.attempts else self.webhooks.batch)

    async def _post(self, http: httpx.AsyncClient, endpoint: Endpoint, version: Undelivered) -> Sent:
        headers, body = signed(endpoint, version.document, _now())
        try:
            answer = await http.post(endpoint.url, content=body, headers=headers)
        except httpx.HTTPError as err:
            return Sent(version.org_id, version.version, one_line(f"{type(err).__name__}: {err}", ERROR_LIMIT))
        if 200 <= answer.status_code < 300:
            return Sent(version.org_id, version.version)
        # The receiver's body (often an HTML error page) is shown in `billing webhook status` and the log.
        return Sent(version.org_id, version.version, one_line(f"HTTP {answer.status_code}: {answer.text}", ERROR_LIMIT))

    def _record(self, endpoint: Endpoint, sent: list[Sent]) -> None:
        now, retry = _now(), self.webhooks.retry
        failed = [s for s in sent if s.error is not None]
        with self.db.transaction() as session:
            for done in sent:
                if done.error is None:
                    mark_delivered(session, endpoint.name, done.org_id, done.version, now)
            row = endpoint_row(session, endpoint.name, endpoint.url)
            if not failed:
                save_endpoint(session, endpoint.name, endpoint.url, state=str(EndpointState.HEALTHY), attempts=0,
                              failing_since=None, next_attempt_at=None, last_delivered_at=now)
                return
            attempts, since = row.attempts + 1, row.failing_since or now
            state = retry.state(since, now)
            if state != row.state:
                log.warning("webhook endpoint %s is %s: %s", endpoint.name, state, failed[0].error)
            save_endpoint(session, endpoint.name, endpoint.url, state=str(state), attempts=attempts,
                          failures=row.failures + len(failed), last_error=failed[0].error, failing_since=since,
                          next_attempt_at=retry.next_attempt(attempts, now),
                          last_delivered_at=now if len(failed) < len(sent) else row.last_delivered_at)
        _count_failures(endpoint.name, len(failed))

    def _gauges(self, endpoint: Endpoint) -> None:
        with self.db.transaction() as session:
            waiting, oldest = backlog(session, endpoint.name)
            row = endpoint_row(session, endpoint.name, endpoint.url)
            failing = row.state == EndpointState.FAILING
        _set_gauges(endpoint.name, waiting, (_now() - oldest).total_seconds() if oldest else 0.0, failing)


def _count_failures(endpoint: str, number: int) -> None:
    metrics.count("billing_entitlement_deliveries_failed_total",
                  "Entitlement webhooks the endpoint did not confirm", number, endpoint=endpoint)


def _set_gauges(endpoint: str, waiting: int, oldest_seconds: float, failing: bool) -> None:
    metrics.delivery_gauges(endpoint, waiting, oldest_seconds, failing)
