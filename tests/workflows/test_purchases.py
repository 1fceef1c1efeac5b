"""What an org buys: a plan chosen during the trial, upgrades from free, yearly switch, add-ons."""

from datetime import datetime, timedelta, timezone

from dateutil.relativedelta import relativedelta
from sqlalchemy import select

from db.models import Invoice, Payment
import pytest

from domain import requests as rq
from workers.runtime.operations import OperationRefused
from domain.cards import sandbox_tokenise
from tests.support.clock import equivalent_after

GOOD = "4242424242424242"


def paid_amounts(db, org_id: str) -> list[int]:
    with db.transaction() as session:
        return list(session.scalars(select(Payment.amount).join(Invoice).where(
            Invoice.org_id == org_id, Payment.outcome == "succeeded").order_by(Payment.id)))


async def test_plan_chosen_during_the_trial_starts_and_is_charged_at_the_trial_end(stack, smtp_sink):
    async with stack.worker():
        start = await stack.now()
        org_id = await stack.create_org(start=start, users=[("b@x.test", 1.0)], locale="en")
        await stack.advance_to(start + timedelta(days=10))
        outcome = await stack.send(org_id, rq.UpgradeRequest("standard", "monthly"))
        assert "starts when the trial ends" in outcome.message and outcome.payment is None
        card = sandbox_tokenise(GOOD)
        await stack.send(org_id, rq.UpdateCardRequest(card.token, card.brand, card.last4))
        assert paid_amounts(stack.db, org_id) == []
        await stack.advance_to(start + timedelta(days=15, minutes=5))
        state = await stack.state(org_id)
    assert state.snapshot.plan == "standard" and state.snapshot.status == "active"
    assert state.snapshot.licences == 2
    assert paid_amounts(stack.db, org_id) == [600]
    trial_end = start + timedelta(days=15)
    assert state.snapshot.renews_at == trial_end + relativedelta(months=1)
    [receipt] = smtp_sink.for_org(org_id, "receipt")
    assert "$6.00" in receipt.part("plain") and "Workplace Standard licence" in receipt.part("plain")
    assert smtp_sink.for_org(org_id, "trial_expired") == []


async def test_upgrade_from_free_charges_a_full_cycle_for_every_user(stack):
    async with stack.worker():
        start = await stack.now()
        org_id = await stack.create_org(plan="free", start=start, users=[("b@x.test", 7.0), ("c@x.test", 1.0)])
        card = sandbox_tokenise(GOOD)
        await stack.send(org_id, rq.UpdateCardRequest(card.token, card.brand, card.last4))
        outcome = await stack.send(org_id, rq.UpgradeRequest("mail_lite_10", "yearly"))
        state = await stack.state(org_id)
    assert outcome.payment == "succeeded" and outcome.amount == 3 * 1250
    assert state.snapshot.plan == "mail_lite_10" and state.snapshot.cycle == "yearly"
    assert state.snapshot.licences == 3


async def test_switch_to_yearly_credits_the_unused_month_and_moves_the_renewal(stack):
    start, shift = equivalent_after(datetime(2027, 4, 1, 9, 0, tzinfo=timezone.utc), await stack.now())
    async with stack.worker():
        await stack.advance_to(start)
        org_id = await stack.create_org(plan="standard", cycle="monthly", card=GOOD, start=start,
                                        users=[("b@x.test", 1.0)])
        switch_at = start + timedelta(days=10)  # 20 of April's 30 days unused
        await stack.advance_to(switch_at)
        outcome = await stack.send(org_id, rq.SwitchToYearlyRequest())
        state = await stack.state(org_id)
    # A year of 2 Standard licences is 2 x 3000 = 6000; credit 2 x 300 x 20/30 = 400.
    assert outcome.payment == "succeeded" and outcome.amount == 5600
    assert state.snapshot.cycle == "yearly"
    assert abs(state.snapshot.renews_at - (datetime(2028, 4, 11, 9, 0, tzinfo=timezone.utc) + shift)) < timedelta(minutes=1)


async def test_a_switch_that_ends_in_a_credit_note_does_not_say_paid(stack):
    """The answer said `paid INV-...` for a credit note (the yearly switch crediting more than the
    year costs): nothing was charged, the amount is kept as credit."""
    async with stack.worker():
        org_id = await stack.create_org(plan="standard", cycle="monthly", card=GOOD, users=[("b@x.test", 1.0)])
        await stack.send(org_id, rq.BuyAddonRequest(addon="support_enhanced"))
        await stack.send(org_id, rq.RemoveAddonRequest(addon="support_enhanced"))
        outcome = await stack.send(org_id, rq.SwitchToYearlyRequest())
        state = await stack.state(org_id)
    assert state.snapshot.credit > 0
    assert "paid" not in outcome.message and outcome.amount == 0
    assert outcome.message.endswith(f"; nothing charged: {outcome.invoice} is settled (a credit note, or covered by "
                                    "the account credit)"), outcome.message


async def test_switch_to_monthly_waits_for_the_yearly_renewal_then_renews_monthly(stack, smtp_sink):
    async with stack.worker():
        org_id = await stack.create_org(plan="standard", cycle="yearly", card=GOOD, users=[("b@x.test", 1.0)])
        renewal = (await stack.state(org_id)).snapshot.renews_at
        await stack.advance_to(renewal - timedelta(days=200))
        outcome = await stack.send(org_id, rq.SwitchToMonthlyRequest())
        assert outcome.message.startswith(f"switch to monthly billing scheduled for {renewal:%Y-%m-%d}")
        state = await stack.state(org_id)
        assert (state.snapshot.cycle, state.snapshot.scheduled.cycle) == ("yearly", "monthly")
        assert state.next_action.endswith("billing switches to monthly: renewal charge for a monthly cycle")
        await stack.advance_to(renewal + relativedelta(months=1, hours=1))
        state = await stack.state(org_id)
    # Nothing credited at the switch; then 2 Standard licences a month: 2 x $3.00, twice.
    assert paid_amounts(stack.db, org_id) == [600, 600]
    assert (state.snapshot.cycle, state.snapshot.scheduled.cycle) == ("monthly", None)
    assert state.snapshot.renews_at == renewal + relativedelta(months=2)
    assert len(smtp_sink.for_org(org_id, "receipt")) == 2


async def test_add_ons_and_tiers_are_prorated_now_and_billed_in_full_at_renewal(stack):
    start, shift = equivalent_after(datetime(2027, 6, 1, 9, 0, tzinfo=timezone.utc), await stack.now())
    async with stack.worker():
        await stack.advance_to(start)
        org_id = await stack.create_org(plan="standard", cycle="monthly", card=GOOD, start=start)
        await stack.advance_to(start + timedelta(days=15))  # June has 30 days: 15 left
        flat = await stack.send(org_id, rq.BuyAddonRequest("support_essentials"))
        tier = await stack.send(org_id, rq.ChangeTierRequest(3000))
        await stack.send(org_id, rq.SetContactsRequest(2500))
        refused = stack.send(org_id, rq.ChangeTierRequest(2000))
        with pytest.raises(OperationRefused, match="2000-contact tier is below current usage of 2500"):
            await refused
        await stack.send(org_id, rq.SetContactsRequest(1500))
        lower = await stack.send(org_id, rq.ChangeTierRequest(2000))
        assert "from" in lower.message and lower.payment is None
        removed = await stack.send(org_id, rq.RemoveAddonRequest("support_essentials"))
        assert "stays until" in removed.message
        await stack.advance_to(start + timedelta(days=30, minutes=5))
        state = await stack.state(org_id)
    assert flat.amount == 2500 and tier.amount == 750  # 5000 x 15/30; 3 x 500 x 15/30
    assert state.snapshot.addons == [] and state.snapshot.tier_contacts == 2000
    # The renewal bills the plan (300) and the lowered tier (2 x 500); the add-on has ended.
    assert paid_amounts(stack.db, org_id)[-1] == 300 + 1000
