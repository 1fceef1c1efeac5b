"""A database that stops answering fails the activity (which Temporal retries) instead of holding a
worker thread: connections to PostgreSQL are opened with bounded timeouts (db/session.py)."""

import socket
import time

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from db.session import Database

pytestmark = pytest.mark.postgres


def test_a_server_that_accepts_but_never_answers_fails_the_connection_in_seconds():
    # The kernel completes the TCP handshake from the backlog; nothing ever answers libpq's
    # start-up message, as with a host that hangs or a partition after the handshake.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        db = Database(f"postgresql+psycopg2://postgres@127.0.0.1:{port}/billing")
        started = time.monotonic()
        with pytest.raises(OperationalError, match="timeout"):
            with db.transaction() as session:
                session.execute(text("select 1"))
        assert time.monotonic() - started < 20
        db.dispose()


def test_statements_are_cut_off_before_the_activity_timeout(pg_url):
    db = Database(pg_url)
    try:
        with db.transaction() as session:
            assert session.scalar(text("show statement_timeout")) == "45s"
            assert session.connection().connection.dbapi_connection.get_dsn_parameters()["keepalives_idle"] == "30"
    finally:
        db.dispose()
