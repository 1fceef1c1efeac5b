"""The mailer activity against a real SMTP server on loopback."""

from dataclasses import replace
from datetime import datetime, timezone

import pytest
from temporalio.testing import ActivityEnvironment

from activities.mail import MailActivities, SmtpConfig
from activities.messages import EmailRequest
from domain import emails
from domain.decisions import EmailLine
from domain.storage import BlockedUser, Verdict, storage_emails
from domain.subscription import Item
from domain.onboarding import NewOrg, validate_new_org
from services.orgs import create_org
from db.snapshots import load_state
from domain.policy import Policy

AT = datetime(2026, 3, 1, 9, 0, tzinfo=timezone.utc)


@pytest.fixture
def mailer(pg_db, smtp_sink):
    return MailActivities(pg_db, SmtpConfig(host="127.0.0.1", port=smtp_sink.port))


def make_org(db, catalog, org_id: str, name: str, locale: str = "en", currency: str = "USD") -> None:
    org = validate_new_org(NewOrg(id=org_id, name=name, admin_email=f"admin@{org_id}.test", users=[],
                                  locale=locale, currency=currency), catalog)
    with db.transaction() as session:
        create_org(session, org, catalog, Policy(), AT)


def expired_mail(org_id: str) -> EmailRequest:
    return EmailRequest(org_id, "trial_expired", "trial:t1", AT, values={"plan_name": "Free", "blocked_users": []})


async def test_org_name_with_html_is_escaped_in_the_html_part(mailer, pg_db, catalog, smtp_sink):
    make_org(pg_db, catalog, "htmlorg", '<script>alert("x")</script> & Co')
    await ActivityEnvironment().run(mailer.send_email, expired_mail("htmlorg"))
    [received] = smtp_sink.for_org("htmlorg")
    html = received.part("html")
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; Co" in html
    assert "<script>" not in html
    assert '<script>alert("x")</script> & Co' in received.part("plain")


async def test_retrying_after_a_successful_send_delivers_nothing_more(mailer, pg_db, catalog, smtp_sink):
    make_org(pg_db, catalog, "retryorg", "Retry Org")
    env = ActivityEnvironment()
    first = await env.run(mailer.send_email, expired_mail("retryorg"))
    retried = await env.run(mailer.send_email, expired_mail("retryorg"))
    assert first.delivered == ["admin@retryorg.test"]
    assert retried.delivered == [] and retried.already_sent == ["admin@retryorg.test"]
    assert len(smtp_sink.for_org("retryorg")) == 1


async def test_a_failed_smtp_conversation_is_retried_and_delivers_once(mailer, pg_db, catalog, smtp_sink):
    make_org(pg_db, catalog, "downorg", "Down Org")
    env = ActivityEnvironment()
    smtp_sink.handler.refuse = True
    try:
        with pytest.raises(Exception):
            await env.run(mailer.send_email, expired_mail("downorg"))
    finally:
        smtp_sink.handler.refuse = False
    await env.run(mailer.send_email, expired_mail("downorg"))
    await env.run(mailer.send_email, expired_mail("downorg"))
    assert len(smtp_sink.for_org("downorg")) == 1


async def test_a_trial_reminder_sent_is_part_of_the_org_s_state_once_and_not_before(mailer, pg_db, catalog,
                                                                                     smtp_sink):
    make_org(pg_db, catalog, "remindorg", "Remind Org")
    ends = datetime(2026, 3, 4, 9, 0, tzinfo=timezone.utc)
    env = ActivityEnvironment()
    three_days = EmailRequest.of("remindorg", AT, emails.trial_ending(ends, 3, "Professional"))
    smtp_sink.handler.refuse = True
    try:
        with pytest.raises(Exception):
            await env.run(mailer.send_email, three_days)
    finally:
        smtp_sink.handler.refuse = False
    assert reminders_sent(pg_db, "remindorg") == []          # refused by the server: not sent, due again
    await env.run(mailer.send_email, three_days)
    await env.run(mailer.send_email, three_days)             # a retry: nothing more
    await env.run(mailer.send_email, EmailRequest.of("remindorg", AT, emails.trial_ending(ends, 1, "Professional")))
    assert reminders_sent(pg_db, "remindorg") == [1, 3]
    assert len(smtp_sink.for_org("remindorg", "trial_ending")) == 2


def reminders_sent(db, org_id: str) -> list[int]:
    with db.transaction() as session:
        return load_state(session, org_id, Policy()).trial_reminders_sent


async def test_mail_is_rendered_in_the_org_language(mailer, pg_db, catalog, smtp_sink):
    make_org(pg_db, catalog, "idorg", "Toko", locale="id", currency="IDR")
    await ActivityEnvironment().run(mailer.send_email, EmailRequest(
        "idorg", "receipt", "receipt:INV-1", AT,
        values={"invoice_number": "INV-idorg-0001", "lines": [], "card": None, "period_start": None,
                "period_end": None}, money={"amount": 150000}))
    [received] = smtp_sink.for_org("idorg")
    assert "INV-idorg-0001" in received.part("plain")
    assert "Rp150.000" in received.part("plain")  # IDR in whole rupiah, Indonesian grouping
    assert "Terima kasih atas pembayaran Anda" in received.part("plain")


def storage_blocked_mail(org_id: str) -> EmailRequest:
    verdict = Verdict(blocked=[BlockedUser("b@x.test", 40 * 1024, 35 * 1024, "storage"),
                               BlockedUser("c@x.test", 5223, 5 * 1024, "storage")])     # 5,223 MB: 5.1 GB
    [email] = storage_emails(verdict, "k", f"admin@{org_id}.test", None, free_units_left=0)
    return EmailRequest.of(org_id, AT, replace(email, to=[f"admin@{org_id}.test"]))


@pytest.mark.parametrize("locale, sizes", [("id", ["40 GB terpakai dari 35 GB", "5,1 GB terpakai dari 5 GB"]),
                                           ("en", ["40 GB used of 35 GB", "5.1 GB used of 5 GB"])])
async def test_storage_sizes_are_written_as_the_org_language_writes_numbers(mailer, pg_db, catalog, smtp_sink,
                                                                             locale, sizes):
    """Issue 22: Indonesian e-mails wrote "40.0 GB" and "5.1 GB"."""
    org_id = f"size{locale}"
    make_org(pg_db, catalog, org_id, "Toko", locale=locale, currency="IDR" if locale == "id" else "USD")
    await ActivityEnvironment().run(mailer.send_email, storage_blocked_mail(org_id))
    [received] = smtp_sink.for_org(org_id)
    for size in sizes:
        assert size in received.part("plain")
    assert "40.0" not in received.part("plain") and "40.0" not in received.part("html")


async def test_sizes_decided_before_the_mailer_wrote_them_are_sent_as_they_were(mailer, pg_db, catalog, smtp_sink):
    make_org(pg_db, catalog, "oldsize", "Toko", locale="id", currency="IDR")
    await ActivityEnvironment().run(mailer.send_email, EmailRequest(
        "oldsize", "storage_blocked", "blocked:old", AT, values={"users": [
            {"email": "b@x.test", "usage": "40.0 GB", "quota": "35 GB", "reason": "storage"}]}))
    [received] = smtp_sink.for_org("oldsize")
    assert "40.0 GB terpakai dari 35 GB" in received.part("plain")


@pytest.mark.parametrize("locale, line", [
    ("en", "2 x Workplace Standard licence (March 1, 2026 – March 31, 2026): $6.00"),
    ("id", "1.000 x Lisensi Workplace Standard (1 Maret 2026 – 31 Maret 2026): Rp3.000.000")])
async def test_the_receipt_shows_each_line_s_quantity(pg_db, catalog, smtp_sink, locale, line):
    """Issue 22: the receipt's lines had no quantity ("licence: $6.00" for 2 licences), unlike the PDF."""
    from activities.documents import Documents, SAMPLE_SELLER
    mailer = MailActivities(pg_db, SmtpConfig(host="127.0.0.1", port=smtp_sink.port),
                            documents=Documents(catalog, SAMPLE_SELLER))
    currency = "IDR" if locale == "id" else "USD"
    org_id = f"qty{locale}"
    make_org(pg_db, catalog, org_id, "Toko", locale=locale, currency=currency)
    count, amount = (1000, 3_000_000) if locale == "id" else (2, 600)
    lines = [EmailLine("", amount, AT, datetime(2026, 4, 1, 9, tzinfo=timezone.utc), Item.licence("standard"),
                       count, amount // count)]
    receipt = emails.receipt(f"INV-{org_id}-0001", amount, None, lines, None, None)
    await ActivityEnvironment().run(mailer.send_email, EmailRequest.of(org_id, AT, replace(receipt, attach_invoice=None)))
    [received] = smtp_sink.for_org(org_id)
    assert line in received.part("plain")
    assert f"{line.split(' x ')[0]} x " in received.part("html")


@pytest.mark.parametrize("locale, line", [
    ("en", "5 x Campaigns subscribers, per 1,000 contacts (March 1, 2026 – March 31, 2026): $25.00"),
    ("id", "5 x Campaigns subscribers, per 1.000 kontak (1 Maret 2026 – 31 Maret 2026): Rp375.000")])
async def test_the_receipt_s_tier_line_counts_blocks_of_contacts_not_the_tier_times_its_blocks(
        pg_db, catalog, smtp_sink, locale, line):
    """A 5,000-contact tier is 5 blocks of 1,000: the line said "5 x Campaigns subscribers, 5,000 contacts"."""
    from activities.documents import Documents, SAMPLE_SELLER
    mailer = MailActivities(pg_db, SmtpConfig(host="127.0.0.1", port=smtp_sink.port),
                            documents=Documents(catalog, SAMPLE_SELLER))
    currency = "IDR" if locale == "id" else "USD"
    org_id = f"tier{locale}"
    make_org(pg_db, catalog, org_id, "Toko", locale=locale, currency=currency)
    step = 75000 if locale == "id" else 500
    lines = [EmailLine("", 5 * step, AT, datetime(2026, 4, 1, 9, tzinfo=timezone.utc),
                       Item.tier("campaigns_contacts"), 5, step)]
    receipt = emails.receipt(f"INV-{org_id}-0001", 5 * step, None, lines, None, None)
    await ActivityEnvironment().run(mailer.send_email, EmailRequest.of(org_id, AT, replace(receipt, attach_invoice=None)))
    [received] = smtp_sink.for_org(org_id)
    assert line in received.part("plain")
    assert "5,000 contacts" not in received.part("plain") and "5.000 kontak" not in received.part("plain")


@pytest.mark.parametrize("locale, subject, says", [
    ("en", "Credit note for Toko: $124.82 kept as credit (INV-note{}-0002)",
     "The credit is used for your next invoices before your card is charged."),
    ("id", "Nota kredit untuk Toko: Rp124.820 disimpan sebagai kredit (INV-note{}-0002)",
     "Kredit ini dipakai untuk faktur Anda berikutnya sebelum kartu Anda ditagih.")])
async def test_a_credit_note_is_e_mailed_as_a_credit_note_not_as_a_payment_receipt(mailer, pg_db, catalog, smtp_sink,
                                                                                   locale, subject, says):
    org_id = f"note{locale}"
    make_org(pg_db, catalog, org_id, "Toko", locale=locale, currency="IDR" if locale == "id" else "USD")
    total = -124820 if locale == "id" else -12482
    await ActivityEnvironment().run(mailer.send_email, EmailRequest.of(
        org_id, AT, emails.receipt(f"INV-{org_id}-0002", total, "visa ending 4242", [], None, None)))
    [note] = smtp_sink.for_org(org_id)
    assert note.subject.strip() == subject.format(locale)
    assert says in note.part("plain") and says in note.part("html")
    assert "receipt" not in note.subject.lower() and "tanda terima" not in note.part("plain").lower()


async def test_a_receipt_says_what_the_account_credit_paid_and_what_a_credit_note_left(mailer, pg_db, catalog,
                                                                                        smtp_sink):
    make_org(pg_db, catalog, "credorg", "Credit Co")
    for email in (emails.receipt("INV-credorg-0002", -12482, "visa ending 4242", [], None, None),
                  emails.receipt("INV-credorg-0004", 39112, "visa ending 4242", [], None, None, credit_applied=8559)):
        await ActivityEnvironment().run(mailer.send_email, EmailRequest.of("credorg", AT, email))
    note, used = sorted(smtp_sink.for_org("credorg"), key=lambda m: m.part("plain").find("0004"))
    assert "Kept as account credit: $124.82" in note.part("plain") and "Amount paid" not in note.part("plain")
    assert "Paid with" not in note.part("plain")       # no card was charged
    assert "Payment receipt" not in note.subject and "Thank you for your payment" not in note.part("plain")
    assert "Amount paid: $391.12" in used.part("plain")
    assert "Paid from account credit: $85.59" in used.part("plain")


@pytest.mark.parametrize("locale, why, values, subject, says", [
    ("en", "users", {"users": 5}, "Downgrade not applied: Toko stays on Workplace Standard",
     "(Workplace Standard with 3 licences) was not applied: Toko has 5 users now, and every user needs a licence."),
    ("en", "upgrade", {}, "Downgrade not applied: Toko stays on Workplace Standard",
     "was not applied: Toko was upgraded to Workplace Standard since, and the downgrade would undo that upgrade."),
    ("id", "user_cap", {"user_cap": 3, "users": 5}, "Penurunan paket tidak diterapkan: Toko tetap menggunakan Workplace Standard",
     "tidak diterapkan: Workplace Standard mengizinkan 3 pengguna, sedangkan Toko memiliki 5.")])
async def test_a_downgrade_not_applied_tells_the_admin_why(mailer, pg_db, catalog, smtp_sink, locale, why, values,
                                                           subject, says):
    org_id = f"nodown{why.replace('_', '')}"
    make_org(pg_db, catalog, org_id, "Toko", locale=locale, currency="IDR" if locale == "id" else "USD")
    await ActivityEnvironment().run(mailer.send_email, EmailRequest.of(org_id, AT, emails.downgrade_not_applied(
        "k", "Workplace Standard", 5, "Workplace Standard", 3, why, AT, **values)))
    [received] = smtp_sink.for_org(org_id)
    assert received.subject.strip() == subject
    assert says in " ".join(received.part("plain").split()) and says in " ".join(received.part("html").split())
