"""A new org's 15-day Professional trial ends on the free plan when nobody upgrades."""

from datetime import timedelta


from db.models import Subscription


async def test_trial_ends_on_free_plan_with_reminders_in_org_language(stack, smtp_sink):
    start = await stack.now()
    async with stack.worker():
        org_id = await stack.create_org(name="Toko Maju", locale="id",
                                        users=[("budi@toko.test", 1.0)], start=start)
        await stack.env.sleep(timedelta(days=11, hours=23))
        assert smtp_sink.for_org(org_id) == []

        await stack.env.sleep(timedelta(hours=2))  # day 12: three days before the end
        reminders = smtp_sink.for_org(org_id, "trial_ending")
        assert len(reminders) == 1
        assert "3 hari" in reminders[0].part("plain")

        await stack.env.sleep(timedelta(days=2))  # day 14: one day before
        assert len(smtp_sink.for_org(org_id, "trial_ending")) == 2
        state = await stack.state(org_id)
        assert state.snapshot.plan == "professional" and state.snapshot.status == "trialing"

        await stack.env.sleep(timedelta(days=1))  # day 15 + 1h
        state = await stack.state(org_id)
        assert state.snapshot.plan == "free"
        assert state.snapshot.status == "free"

    with stack.db.transaction() as session:
        sub = session.get(Subscription, org_id)
        assert sub.plan_id == "free"
    expired = smtp_sink.for_org(org_id, "trial_expired")
    assert len(expired) == 1
    assert expired[0].recipients == [f"admin@{org_id}.test"]
    assert "Toko Maju" in expired[0].part("plain")
    assert expired[0].message["X-Billing-Locale"] == "id"
    assert "Masa uji coba untuk Toko Maju telah berakhir" in expired[0].part("plain")
    assert "Free" in expired[0].part("html")
    reminder_dates = [m.message["Date"] for m in smtp_sink.for_org(org_id, "trial_ending")]
    expected = [start + timedelta(days=12), start + timedelta(days=14)]
    assert all(abs(d.datetime - e) < timedelta(seconds=2) for d, e in zip(reminder_dates, expected, strict=True))
