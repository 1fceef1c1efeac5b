"""The e-mails tell the admin who can act: a scheduled downgrade is cancelled by billing staff
only (domain.rules: request and cancel are staff actions), a cancellation by the admin
themselves (undo_cancel is not)."""

import pytest
from temporalio.testing import ActivityEnvironment

from activities.mail import MailActivities, SmtpConfig
from activities.messages import EmailRequest
from domain import emails
from tests.activities.test_mailer import AT, make_org

STAFF = "rina@billing.test"


@pytest.fixture
def mailer(pg_db, smtp_sink):
    return MailActivities(pg_db, SmtpConfig(host="127.0.0.1", port=smtp_sink.port))


@pytest.mark.parametrize("locale, staff_only", [
    ("en", "Only our billing team can cancel a scheduled downgrade: reply to this e-mail or write to "
           "rina@billing.test before"),
    ("id", "Hanya tim penagihan kami yang dapat membatalkan penurunan paket yang dijadwalkan: balas e-mail ini "
           "atau kirim e-mail ke rina@billing.test sebelum"),
])
async def test_downgrade_e_mail_sends_the_admin_to_billing_staff(mailer, pg_db, catalog, smtp_sink,
                                                                 locale, staff_only):
    org_id = f"down{locale}"
    make_org(pg_db, catalog, org_id, "Acme", locale=locale, currency="IDR" if locale == "id" else "USD")
    email = emails.downgrade_scheduled("update:k", "Workplace Professional", "Workplace Standard", 3, STAFF, AT)
    await ActivityEnvironment().run(mailer.send_email, EmailRequest.of(org_id, AT, email))
    [received] = smtp_sink.for_org(org_id)
    for part in ("plain", "html"):
        text = " ".join(received.part(part).split())
        assert staff_only in text
        assert "console" not in text and "konsol" not in text


async def test_cancellation_e_mail_lets_the_admin_undo_it_in_the_console(mailer, pg_db, catalog,
                                                                        smtp_sink):
    make_org(pg_db, catalog, "cancelorg", "Acme")
    email = emails.cancellation_scheduled("update:c", "Workplace Standard", AT)
    await ActivityEnvironment().run(mailer.send_email, EmailRequest.of("cancelorg", AT, email))
    [received] = smtp_sink.for_org("cancelorg")
    assert "You can undo the cancellation in the Billing section of your admin console" in received.part("plain")
