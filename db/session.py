"""Engines and sessions for SQLite (embedded default) and PostgreSQL."""

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import Session, sessionmaker


def sqlite_file(url: str) -> Path | None:
    """The file of a SQLite URL (None for another database or an in-memory one)."""
    if not url.startswith("sqlite"):
        return None
    path = url.split("///", 1)[-1]
    return Path(path) if path and path != ":memory:" else None


def printable_url(url: str) -> str:
    """The URL with its password hidden, fit for a message."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001
        return "(BILLING_DATABASE_URL)"


def make_engine(url: str, create_folder: bool = True, throwaway: bool = False) -> Engine:
    """`create_folder`: make a SQLite file's folder (the worker, the embedded stack and the
    migrations create their database; the CLI's commands only use an existing one). `throwaway`:
    a SQLite file nobody keeps (a simulation's), so no commit waits for the disk."""
    if url.startswith("sqlite"):
        path = sqlite_file(url)
        if path is not None and create_folder:
            path.parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record):  # noqa: ANN001
            cursor = dbapi_connection.cursor()
            # WAL lets the CLI read while the worker writes; foreign keys are off by default.
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            if throwaway:
                cursor.execute("PRAGMA synchronous=OFF")
            cursor.close()

        return engine
    psycopg2 = make_url(url).get_driver_name() == "psycopg2"
    # values_plus_batch: an UPDATE run for many rows (a usage file) goes 100 rows per round trip.
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20,
                         connect_args=_libpq_timeouts() if psycopg2 else {},
                         **({"executemany_mode": "values_plus_batch"} if psycopg2 else {}))


def _libpq_timeouts() -> dict[str, object]:
    """A database that stops answering (a silent network partition, not a refused connection)
    must fail an activity, which Temporal retries, rather than hold a worker thread forever:
    bounded connect, TCP keepalives and a statement timeout below the activities' 60 s."""
    return {"connect_timeout": 10, "keepalives": 1, "keepalives_idle": 30, "keepalives_interval": 10,
            "keepalives_count": 3, "tcp_user_timeout": 30_000, "options": "-c statement_timeout=45s"}


class Database:
    def __init__(self, url: str, create_folder: bool = True, throwaway: bool = False) -> None:
        self.url = url
        self.engine = make_engine(url, create_folder, throwaway)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A unit of work: committed on success, rolled back on any error."""
        session = self._sessions()
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def ping(self) -> None:
        """Raises when the database does not answer."""
        with self.engine.connect() as connection:
            connection.exec_driver_sql("SELECT 1")

    def dispose(self) -> None:
        self.engine.dispose()
