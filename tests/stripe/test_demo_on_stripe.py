"""`make run` with BILLING_GATEWAY=stripe against localstripe (the issue's Done-when): the
renewing demo org ends with one succeeded PaymentIntent whose metadata names its invoice, the
declining one with a failed intent and the org past due; the key appears in no log line."""

import asyncio
import os
import re
import signal
import subprocess
import sys
import time

import pytest
import stripe

from tests.stripe.conftest import API_KEY, intents_for
from tests.support.binaries import temporal_cli_or_skip
from tests.support.smtp import free_port
from tests.test_demo_stack import DIVIDED_BY, REPO, SLACK, after_the_start, connect, has_status, mails
from workers.stack.demo import DECLINES_AFTER

pytestmark = pytest.mark.devserver


async def test_the_demo_charges_through_stripe(tmp_path, localstripe):
    temporal_cli_or_skip()
    var, log = tmp_path / "var", tmp_path / "embedded.log"
    address = f"127.0.0.1:{free_port()}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BILLING_", "TEMPORAL_", "STRIPE_"))}
    env.update(BILLING_TEMPORAL_ADDRESS=address, BILLING_SMTP_PORT=str(free_port()), BILLING_GATEWAY="stripe",
               STRIPE_API_KEY=API_KEY, STRIPE_API_BASE=localstripe.url, STRIPE_OFF_SESSION="false")
    with log.open("wb") as out:
        process = subprocess.Popen([sys.executable, "-m", "workers.stack.embedded", "--var", str(var),
                                    "--ui-port", str(free_port()), "--promised-times-divided-by", str(DIVIDED_BY)],
                                   cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    started = time.monotonic()
    try:
        client = await connect(address, process, log)
        renewed = declined = False
        while not (renewed and declined) and time.monotonic() < started + after_the_start(DECLINES_AFTER) + SLACK:
            assert process.poll() is None, log.read_text()[-3000:]
            renewed = renewed or bool(mails(var / "mail", "demo-renews-soon", "receipt"))
            declined = declined or await has_status(client, "demo-card-declines", "past_due")
            await asyncio.sleep(1)
        assert renewed and declined, log.read_text()[-3000:]
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=40) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)

    server = stripe.StripeClient(API_KEY, base_addresses={"api": localstripe.url})
    [receipt] = mails(var / "mail", "demo-renews-soon", "receipt")
    [paid] = intents_for(server, "demo-renews-soon")
    assert paid.status == "succeeded" and paid.metadata["invoice"] in receipt["Subject"]
    failed = intents_for(server, "demo-card-declines")
    assert [pi.status for pi in failed] == ["requires_payment_method"]
    assert failed[0].last_payment_error.code == "card_declined"
    assert API_KEY not in log.read_text()
    assert not re.search(r"sk_test_\w+", log.read_text())
