"""The reconciliation workflow, run nightly by a Temporal Schedule."""

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from activities.reconcile import ReconcileActivities, ReconcileReport

RECONCILE_SCHEDULE_ID = "billing-reconcile-nightly"


@workflow.defn(name="Reconcile")
class ReconcileWorkflow:
    @workflow.run
    async def run(self) -> ReconcileReport:
        report: ReconcileReport = await workflow.execute_activity_method(
            ReconcileActivities.reconcile_orgs, start_to_close_timeout=timedelta(hours=1),
            heartbeat_timeout=timedelta(minutes=2), retry_policy=RetryPolicy(maximum_attempts=3),
            summary="start missing org workflows, report disagreements")
        if report.disagreements:
            workflow.logger.warning("reconcile: %d org(s) disagree with the database: %s",
                                    len(report.disagreements), "; ".join(report.disagreements[:20]))
        return report

