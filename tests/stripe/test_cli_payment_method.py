"""`billing org update-card ORG --payment-method pm_...` with BILLING_GATEWAY=stripe: no card
number, the card's brand and last four read back from Stripe (localstripe), the open invoice
charged at once; a number is refused there, and so is a PaymentMethod on the sandbox."""

from tests.stripe.conftest import API_KEY, intents_for
from tests.stripe.test_charges import DECLINING, invoices, renewed
from tests.support.cli import billing, stack_env


async def test_update_card_takes_a_payment_method_and_pays_the_open_invoice(stack, stripe_gateway, localstripe,
                                                                              on_server):
    mastercard = on_server.v1.payment_methods.create(params={
        "type": "card", "card": {"number": "5555555555554444", "exp_month": 3, "exp_year": 2033, "cvc": "123"}})
    sepa = on_server.v1.payment_methods.create(params={"type": "sepa_debit",
                                                       "sepa_debit": {"iban": "DE89370400440532013000"}})
    async with stack.worker():
        env = stack_env(stack, BILLING_GATEWAY="stripe", STRIPE_API_KEY=API_KEY, STRIPE_API_BASE=localstripe.url)
        org_id, state = await renewed(stack, DECLINING)
        assert state.snapshot.status == "past_due"
        number = await billing("org", "update-card", org_id, stdin="4242424242424242\n", **env)
        unknown = await billing("org", "update-card", org_id, "--payment-method", "pm_unknown", **env)
        not_a_card = await billing("org", "update-card", org_id, "--payment-method", sepa.id, **env)
        on_sandbox = await billing("org", "update-card", org_id, "--payment-method", mastercard.id, **stack_env(stack))
        run = await billing("org", "update-card", org_id, "--payment-method", mastercard.id, **env)

    assert run.code == 0 and run.err == "", run
    assert f"card {mastercard.card.brand} ending 4444 saved" in run.out   # as Stripe describes it
    assert f"paid INV-{org_id}-0001" in run.out
    assert [status for _, status, _ in invoices(stack.db, org_id)] == ["paid"]
    assert [pi.status for pi in intents_for(on_server, org_id) if pi.status == "succeeded"] == ["succeeded"]
    assert (number.code, number.err_lines) == (2, [
        "error: a card number goes to the sandbox gateway only; with BILLING_GATEWAY=stripe pass --payment-method "
        "pm_... from the console's card form"])
    assert unknown.code == 1 and len(unknown.err_lines) == 1
    assert unknown.err_lines[0].startswith("error: --payment-method pm_unknown: payment gateway refused the request: ")
    # A bank debit has no brand or last four: refused in one line (it was a traceback), nothing charged.
    assert (not_a_card.code, not_a_card.err_lines) == (2, [
        f"error: payment method {sepa.id} is sepa_debit, not a card: renewals are charged to a card"])
    assert (on_sandbox.code, on_sandbox.err_lines) == (2, [
        "error: --payment-method: a Stripe PaymentMethod needs BILLING_GATEWAY=stripe (and STRIPE_API_KEY); "
        "the sandbox takes a card number on standard input"])
    assert all(API_KEY not in r.out + r.err for r in (number, unknown, on_sandbox, run))
