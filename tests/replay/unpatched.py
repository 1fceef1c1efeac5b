"""The org workflow with one command changed and no patch, for the replay test to fail on (its
own module: the workflow sandbox re-imports it, and the test module reads files at import)."""

from temporalio import workflow

from workflows.messages import OrgWorkflowInput
from workflows.org import OrgWorkflow


@workflow.defn(name="OrgLifecycle")
class UnpatchedChange(OrgWorkflow):
    """Publishes no search attributes: every run's upserts are missing from its commands."""

    @workflow.run
    async def run(self, input: OrgWorkflowInput) -> None:
        await super().run(input)

    def _publish(self) -> None:
        self.step = self._next_step()
