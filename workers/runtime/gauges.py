"""Gauges the alerts read, counted from the database by every worker process about once a minute
(BILLING_GAUGE_REFRESH_SECONDS): `billing_orgs{status}` and
`billing_escalations_overdue{deadline}` (deploy/prometheus/alerts.yml)."""

import asyncio
import logging
from datetime import datetime, timedelta, timezone

from temporalio.common import MetricMeter

from activities import metrics
from activities.errors import Places, readable_failure
from db.queries import escalations_overdue, orgs_by_status
from db.session import Database

log = logging.getLogger("billing.gauges")


class OrgGauges:
    def __init__(self, db: Database, meter: MetricMeter, every: timedelta, places: Places = Places()) -> None:
        self.db, self.meter, self.every, self.places = db, meter, every, places

    def refresh(self) -> None:
        with self.db.transaction() as session:
            by_status = orgs_by_status(session)
            overdue = escalations_overdue(session, datetime.now(timezone.utc))
        metrics.org_gauges(self.meter, by_status, overdue)

    async def run(self, stop: asyncio.Event) -> None:
        """Refreshes now, then every `every` until `stop` is set. A failed refresh logs one line and leaves the last values exported:
        an outage already has its alert, and a gauge dropping to nothing would end the others'."""
        while True:
            try:
                await asyncio.to_thread(self.refresh)
            except Exception as err:  # noqa: BLE001
                failure = readable_failure(err, self.places)
                log.warning("org gauges not refreshed, keeping the last values: %s", failure.message,
                            extra={"failure_type": failure.type, "failure_message": failure.message})
            try:
                await asyncio.wait_for(stop.wait(), self.every.total_seconds())
                return
            except TimeoutError:
                pass
