"""Every decision that changes an org's entitlements stores the next version in its own
transaction; one that changes nothing stores none (PostgreSQL, the real workflows on the
time-skipping server)."""

from datetime import timedelta

from db.entitlements import documents
from domain.entitlements import blocked_users
from domain.requests import AddLicencesRequest


async def test_a_trial_is_told_at_creation_and_again_when_its_end_blocks_users(stack):
    start = await stack.now()
    async with stack.worker():
        org_id = await stack.create_org(users=[("budi@t.test", 7.0), ("dewi@t.test", 1.0)], start=start)
        with stack.db.transaction() as session:
            [first] = documents(session, org_id)
        assert (first["version"], first["plan"]["id"], first["status"]) == (1, "professional", "trialing")
        assert first["plan"]["features"]["archiving"] is True and blocked_users(first) == []

        await stack.env.sleep(timedelta(days=15, hours=1))
        await stack.state(org_id)
    with stack.db.transaction() as session:
        versions = documents(session, org_id)
    # The trial's reminders changed nothing the platform is told: no version for them.
    assert [doc["version"] for doc in versions] == [1, 2]
    last = versions[-1]
    assert (last["plan"]["id"], last["status"], last["plan"]["features"]["web_only"]) == ("free", "free", True)
    assert blocked_users(last) == ["budi@t.test"]
    assert [u for u in last["users"] if u["blocked"]] == [
        {"email": "budi@t.test", "quota_gb": 5, "blocked": True, "blocked_reason": "storage"}]
    assert last["as_of"] > first["as_of"]


async def test_a_licence_purchase_is_a_new_version(stack):
    async with stack.worker():
        org_id = await stack.create_org(plan="standard", cycle="monthly", card="4242424242424242",
                                        users=[("a@t.test", 1.0)])
        await stack.state(org_id)
        await stack.send(org_id, AddLicencesRequest(count=2))
        await stack.state(org_id)
    with stack.db.transaction() as session:
        versions = documents(session, org_id)
    assert [(doc["version"], doc["licences"]) for doc in versions][-1][0] == len(versions)
    assert versions[-1]["licences"] == versions[0]["licences"] + 2
