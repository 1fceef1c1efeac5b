"""`python -m tests.reliability.slow_stripe_worker`: the production worker (workers.runtime.worker.main,
configured from BILLING_* variables, BILLING_GATEWAY=stripe) whose Stripe gateway stops at one
dangerous moment of its first charge, named by BILLING_TEST_STRIPE_PAUSE:

- `create`: the PaymentIntent created and its id stored, not yet confirmed;
- `confirm`: the intent confirmed by the server, its outcome not recorded on our side.

There it writes the file BILLING_TEST_STRIPE_PAUSE_MARKER names and waits, so a SIGKILL from the
test lands in that moment and not by luck."""

import os
import time
from pathlib import Path

from activities.gateways.stripe import StripeGateway
from workers.runtime import worker

PAUSE = os.environ["BILLING_TEST_STRIPE_PAUSE"]
MARKER = Path(os.environ["BILLING_TEST_STRIPE_PAUSE_MARKER"])
if PAUSE not in ("create", "confirm"):
    raise SystemExit(f"BILLING_TEST_STRIPE_PAUSE must be create or confirm, not {PAUSE!r}")
_create, _settle = StripeGateway._create, StripeGateway._settle


def _pause(step: str) -> None:
    if step == PAUSE:
        MARKER.write_text(step)
        time.sleep(600)   # until killed


def _create_then_pause(self, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003
    intent_id = _create(self, *args, **kwargs)
    _pause("create")
    return intent_id


def _pause_then_settle(self, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003
    _pause("confirm")
    return _settle(self, *args, **kwargs)


StripeGateway._create = _create_then_pause
StripeGateway._settle = _pause_then_settle

if __name__ == "__main__":
    worker.main()
