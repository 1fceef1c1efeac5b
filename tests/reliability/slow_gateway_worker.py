"""`python -m tests.reliability.slow_gateway_worker`: the production worker (workers.runtime.worker.main,
configured from BILLING_* variables like any deployment) whose sandbox gateway takes
BILLING_TEST_GATEWAY_DELAY seconds to answer after it has accepted a charge.

The delay holds every charge in its most dangerous moment, money taken and nothing recorded on
our side, so a SIGKILL from the test lands there and not by luck."""

import os
import time

from activities import payments
from workers.runtime import worker

DELAY = float(os.environ.get("BILLING_TEST_GATEWAY_DELAY", "0.5"))
_accept = payments.SandboxGateway.charge


def _slow_charge(self, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003
    result = _accept(self, *args, **kwargs)
    time.sleep(DELAY)
    return result


payments.SandboxGateway.charge = _slow_charge

if __name__ == "__main__":
    worker.main()
