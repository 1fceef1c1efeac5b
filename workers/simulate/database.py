"""The simulation's database: a fresh SQLite file, or BILLING_DATABASE_URL when it holds no org
(the simulated org is removed from it afterwards)."""

from db.migrate import upgrade
from db.orgs import forget_org
from db.queries import org_exists, orgs_held
from db.session import Database, printable_url
from workers.simulate.errors import SimulationRefused


def _require_throwaway(url: str) -> None:
    """BILLING_DATABASE_URL may be used only if it holds no org: simulate must never write next
    to real orgs (and `billing reconcile` would start live workflows for a simulated one)."""
    count, some = orgs_held(url)
    if count:
        listed = ", ".join(some) + (", ..." if count > len(some) else "")
        raise SimulationRefused(
            f"BILLING_DATABASE_URL ({printable_url(url)}) holds {count} org{'s' if count != 1 else ''} ({listed}); "
            "simulate writes only into a throwaway database: unset BILLING_DATABASE_URL for a fresh SQLite "
            "file, or point it at an empty database")


def prepare_database(url: str, org_id: str, throwaway: bool = False) -> Database:
    """The database migrated, without the org. `throwaway`: a file of the run's own."""
    if not throwaway:
        _require_throwaway(url)
    upgrade(url)
    db = Database(url, throwaway=throwaway)
    with db.transaction() as session:
        if org_exists(session, org_id):
            db.dispose()  # another simulation started on it since the check above
            raise SimulationRefused(f"org {org_id!r} already exists in the database {printable_url(url)}; simulate "
                                    "needs a database without it (unset BILLING_DATABASE_URL for a fresh SQLite "
                                    "file)")
    return db


def remove_org(db: Database, org_id: str) -> None:
    """Every row of the simulated org, from a database that outlives the run (BILLING_DATABASE_URL),
    the sandbox gateway's record of its charges included."""
    with db.transaction() as session:
        forget_org(session, org_id)
