"""What ops read when an activity fails: one short line naming the component and the cause, retried
for an outage, final for a refusal or a data error; never the SQL or its parameters."""

import asyncio

import aiosmtplib
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DataError, OperationalError

from activities.errors import Places, database_address, readable_failure
from activities.payments import GatewayUnavailable
from db.session import Database
from domain.errors import InvalidInput
from tests.support.smtp import free_port

PLACES = Places(database="10.0.0.5:5432", smtp="mail.example.com:587", temporal="temporal:7233")


def test_a_refused_database_connection_names_the_database_and_where_it_was_sought():
    port = free_port()   # nobody listens there
    db = Database(f"postgresql+psycopg2://billing:secret@127.0.0.1:{port}/billing")
    with pytest.raises(OperationalError) as raised:
        with db.transaction() as session:
            session.execute(text("SELECT id FROM organisations WHERE id = :id"), {"id": "acme-card-4242"})
    db.dispose()
    failure = readable_failure(raised.value, Places(database=database_address(db.url)))
    assert failure.message == f"database unreachable: connection refused at 127.0.0.1:{port}"
    assert failure.type == "database_unavailable" and not failure.non_retryable
    assert "secret" not in failure.message


def test_a_database_error_carries_the_drivers_first_line_without_sql_or_parameters():
    class DriverError(Exception):
        pgcode = "57014"
    err = OperationalError("UPDATE subscriptions SET card_token = %(token)s WHERE org_id = %(org)s",
                           {"token": "tok_visa_4242", "org": "acme"},
                           DriverError("canceling statement due to statement timeout\nCONTEXT: SQL statement"))
    assert "tok_visa_4242" in str(err) and "UPDATE" in str(err)   # what the SDK used to send
    failure = readable_failure(err, PLACES)
    assert failure.message == "database unavailable: canceling statement due to statement timeout at 10.0.0.5:5432"
    assert failure.type == "database_unavailable" and not failure.non_retryable


def test_smtp_unreachable_names_the_smtp_server():
    port = free_port()

    async def send() -> None:
        await aiosmtplib.send("Subject: hi\n\nhello", sender="billing@example.com", recipients=["a@example.com"],
                              hostname="127.0.0.1", port=port, timeout=5)
    with pytest.raises(aiosmtplib.SMTPException) as raised:
        asyncio.run(send())
    failure = readable_failure(raised.value, Places(smtp=f"127.0.0.1:{port}"))
    assert failure.message == f"SMTP unreachable: connection refused at 127.0.0.1:{port}"
    assert failure.type == "smtp_unavailable" and not failure.non_retryable


def test_the_payment_gateway_is_named_with_its_cause():
    failure = readable_failure(GatewayUnavailable("timeout"), PLACES)
    assert (failure.message, failure.type, failure.non_retryable) == ("payment gateway: timeout",
                                                                     "payment_gateway_unavailable", False)


def test_refusals_and_data_errors_are_final():
    refused = readable_failure(InvalidInput("licences: at most 100000"), PLACES)
    assert (refused.message, refused.type, refused.non_retryable) == ("licences: at most 100000", "invalid_input",
                                                                      True)
    from activities.errors import data_error
    err = DataError("INSERT INTO users (email) VALUES (%(email)s)", {"email": "x" * 400},
                    Exception("value too long for type character varying(320)"))
    final = readable_failure(data_error(err), PLACES)
    assert final.type == "data_error" and final.non_retryable
    assert final.message == ("the database refused a value: Exception: value too long for type character "
                             "varying(320)")


def test_an_unforeseen_error_keeps_its_class_as_type_on_one_short_line():
    failure = readable_failure(RuntimeError("relation is on fire\nDETAIL:  " + "x" * 5000), PLACES)
    assert failure.type == "RuntimeError" and not failure.non_retryable
    assert failure.message.startswith("relation is on fire DETAIL: xxx") and len(failure.message) == 400
    assert "\n" not in failure.message
