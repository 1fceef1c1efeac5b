"""The Temporal server dies (SIGKILL) with org workflows sleeping towards a renewal and a trial end
a few seconds away, and stays down past those moments. Started again on the same file-backed
store, it fires the overdue timers: the renewal is charged once, the trial ends once. The
worker, in-process, rides out the outage on its own (its polls fail, then reconnect)."""

import signal
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import select
from temporalio.client import Client

from activities.mail import SmtpConfig
from activities.payments import SandboxGateway
from db.models import EmailMessage, Subscription
from domain.onboarding import NewOrg, validate_new_org
from services.orgs import create_org
from domain.policy import Policy
from tests.reliability.support import (DevServer, assert_exactly_once, due_in, now_utc, paid_renewals, renewal_org,
                                       wait_until)
from tests.support.history import activities_run
from tests.support.smtp import SmtpSink
from workers.runtime.worker import Components, build_worker
from workflows.org import OrgWorkflow
from workflows.starter import org_handle, start_org_workflow

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.devserver]


async def test_overdue_timers_fire_after_a_server_restart(pg_db, catalog, tmp_path):
    server = DevServer(tmp_path, db_filename=tmp_path / "temporal.db")
    sink = SmtpSink().start()
    policy = Policy()
    queue = f"restart-{uuid.uuid4().hex[:6]}"
    try:
        await server.start()
        client = await Client.connect(server.address)
        components = Components(db=pg_db, catalog=catalog, policy=policy,
                                smtp=SmtpConfig(host="127.0.0.1", port=sink.port), gateway=SandboxGateway(pg_db))
        async with build_worker(client, queue, components, graceful_shutdown=timedelta(seconds=5)):
            due = due_in(8)
            renewing, trial = f"r{uuid.uuid4().hex[:8]}", f"t{uuid.uuid4().hex[:8]}"
            renewal_org(pg_db, catalog, policy, renewing, due)
            with pg_db.transaction() as session:
                create_org(session, validate_new_org(NewOrg(id=trial, name="Trial org", admin_email=f"a@{trial}.test",
                                                            users=[]), catalog),
                           catalog, policy, due - timedelta(days=policy.trial_days))
            runs = {}
            for org_id in (renewing, trial):
                runs[org_id] = (await start_org_workflow(client, org_id, queue)).result_run_id

            async def sleeping(org_id: str) -> bool:
                try:
                    state = await org_handle(client, org_id).query(OrgWorkflow.state)
                except Exception:  # noqa: BLE001  (still loading)
                    return False
                return state.next_action_at == due
            for org_id in (renewing, trial):
                await wait_until(lambda org_id=org_id: sleeping(org_id), 20, f"{org_id} to sleep until {due}")

            server.stop(signal.SIGKILL)
            await wait_until(lambda: now_utc() > due + timedelta(seconds=3), 20, "the due time to pass")
            assert paid_renewals(pg_db, [renewing]) == 0
            await server.start()

            await wait_until(lambda: paid_renewals(pg_db, [renewing]) == 1, 60, "the renewal after the restart")

            def trial_over() -> bool:
                with pg_db.transaction() as session:
                    return session.get(Subscription, trial).plan_id == "free" and session.scalar(
                        select(EmailMessage.status).where(EmailMessage.org_id == trial,
                                                          EmailMessage.template == "trial_expired")) == "sent"
            await wait_until(trial_over, 30, "the trial to end after the restart")

        assert_exactly_once(pg_db, [renewing], {renewing: len(sink.for_org(renewing, "receipt"))})
        assert len(sink.for_org(trial, "trial_expired")) == 1
        # The same runs went on: the state survived in the server's file, nothing was restarted by us.
        expected_step = {renewing: "open_renewal", trial: "expire_trial"}
        for org_id, run_id in runs.items():
            history = await client.get_workflow_handle(f"org-{org_id}", run_id=run_id).fetch_history()
            assert expected_step[org_id] in activities_run(history.events)
    finally:
        server.stop()
        sink.stop()
