"""Renewals and money: a monthly org charged correctly to the cent for 14 months."""

from datetime import datetime, timedelta, timezone

from sqlalchemy import select

from db.models import Invoice, Payment
from domain import requests as rq
from tests.support.clock import equivalent_after

GOOD_CARD = "4242424242424242"


def charges(db, org_id: str) -> list[tuple[datetime, int, str]]:
    with db.transaction() as session:
        rows = session.execute(select(Payment.created_at, Payment.amount, Payment.outcome)
                               .join(Invoice, Invoice.id == Payment.invoice_id)
                               .where(Invoice.org_id == org_id).order_by(Payment.id)).all()
    return [(at, amount, str(outcome)) for at, amount, outcome in rows]


def same_minute(a: datetime, b: datetime) -> bool:
    # The test server's clock runs in real time while work is in flight: allow for a slow machine.
    return abs(a - b) < timedelta(minutes=1)


async def test_fourteen_months_of_a_monthly_org_with_mid_cycle_purchases(stack, smtp_sink):
    start, shift = equivalent_after(datetime(2027, 1, 31, 9, 0, tzinfo=timezone.utc), await stack.now())
    at = lambda *args: datetime(*args, 9, 0, tzinfo=timezone.utc) + shift  # noqa: E731
    async with stack.worker():
        await stack.advance_to(start)
        org_id = await stack.create_org(plan="standard", cycle="monthly", card=GOOD_CARD, start=start,
                                        users=[("b@x.test", 1.0), ("c@x.test", 1.0)])
        await stack.advance_to(at(2027, 3, 15))
        outcome = await stack.send(org_id, rq.AddLicencesRequest(count=2))
        assert outcome.payment == "succeeded" and outcome.amount == 310
        await stack.advance_to(at(2027, 4, 10))
        outcome = await stack.send(org_id, rq.BuyStorageRequest(unit_gb=25, count=1))
        assert outcome.payment == "succeeded" and outcome.amount == 267
        await stack.advance_to(at(2028, 3, 31) + timedelta(hours=1))
        state = await stack.state(org_id)

    # Standard is $3.00 a licence a month; the 25 GB unit $4.00 a month.
    # Mar 15 -> Mar 31 is 16 of 31 days: 2 x 300 x 16/31 = 309.68 -> 310.
    # Apr 10 -> Apr 30 is 20 of 30 days: 400 x 20/30 = 266.67 -> 267.
    renewal_dates = [at(2027, 2, 28), at(2027, 3, 31)] + [at(*d) for d in (
        (2027, 4, 30), (2027, 5, 31), (2027, 6, 30), (2027, 7, 31), (2027, 8, 31), (2027, 9, 30),
        (2027, 10, 31), (2027, 11, 30), (2027, 12, 31), (2028, 1, 31), (2028, 2, 29), (2028, 3, 31))]
    expected = [(renewal_dates[0], 900), (at(2027, 3, 15), 310), (renewal_dates[1], 1500),
                (at(2027, 4, 10), 267)] + [(d, 1900) for d in renewal_dates[2:]]
    actual = charges(stack.db, org_id)
    assert [amount for _, amount, _ in actual] == [amount for _, amount in expected]
    assert all(same_minute(a, e) for (a, _, _), (e, _) in zip(actual, expected, strict=True))
    assert all(outcome == "succeeded" for _, _, outcome in actual)
    assert state.snapshot.licences == 5
    assert state.snapshot.renews_at == at(2028, 4, 30)
    receipts = smtp_sink.for_org(org_id, "receipt")
    assert len(receipts) == len(expected)
    assert "$19.00" in receipts[-1].part("plain")
    with stack.db.transaction() as session:
        last = session.scalars(select(Invoice).where(Invoice.org_id == org_id).order_by(Invoice.id.desc())).first()
        assert [(line.quantity, line.amount) for line in last.lines] == [(5, 1500), (1, 400)]
        assert str(last.status) == "paid"
