"""Why a simulation did not complete (not a problem of the scenario file: that is ScenarioError)."""


class SimulationFailed(Exception):
    """The run could not complete (exit 1)."""


class SimulationRefused(Exception):
    """The run may not start with this configuration (exit 2): e.g. a database that holds real orgs."""
