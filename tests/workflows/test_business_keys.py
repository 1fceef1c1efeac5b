"""Business keys stay within the columns that make them unique (issue 22: look for keys built
from something that can be None, repeat, or grow): an invoice's key and an e-mail's occasion are
built from an Update's id, which anyone may type in the Temporal UI (up to 100 characters), and
from the org's id and a user's address."""

from sqlalchemy import select

from db.models import EmailMessage, Invoice
from domain.operations import OPERATIONS
from workflows.messages import ChangeOutcome
from workflows.updates import UPDATES

GOOD = "4242424242424242"
LONG_ORG = "o" * 63                                  # the longest org id there may be
LONG_USER = "u" * 64 + "@" + "d" * 180 + ".test"     # 250 characters: a valid address


async def test_a_purchase_and_a_usage_report_with_the_longest_ids_are_invoiced_and_announced(stack, smtp_sink):
    async with stack.worker():
        org_id = await stack.create_org(LONG_ORG, plan="standard", cycle="monthly", card=GOOD, licences=3,
                                        users=[(LONG_USER, 1.0)])
        handle = stack.handle(org_id)
        bought = await handle.execute_update(UPDATES["add_licences"], {"count": 1}, id="b" * 100,
                                             result_type=ChangeOutcome)
        blocked = await handle.execute_update(UPDATES["set_usage"],
                                              {"user": LONG_USER, "storage_gb": 45}, id="u" * 100,
                                              result_type=ChangeOutcome)
    assert bought.payment == "succeeded" and blocked.message == f"{LONG_USER} uses 45 GB"
    with stack.db.transaction() as session:
        keys = session.scalars(select(Invoice.business_key).where(Invoice.org_id == org_id)).all()
        sent = session.scalars(select(EmailMessage.template).where(EmailMessage.org_id == org_id,
                                                                   EmailMessage.status == "sent")).all()
    assert len(keys) == 1 and all(len(key) <= 200 for key in keys)
    assert sorted(sent) == ["receipt", "storage_blocked", "storage_blocked"]
