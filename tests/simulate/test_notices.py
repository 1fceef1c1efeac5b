"""What the admin is told when something announced to them does not happen, run as a new user
would: through `billing simulate` (real workflows, database, SMTP)."""

from pathlib import Path

import pytest

from tests.simulate.conftest import at, events, simulate

CASES = Path(__file__).resolve().parent / "notices"


@pytest.mark.parametrize("case, when, final", [
    ("1", "2026-03-08 09:00", ("standard", 5)),        # the second user added leaves nothing to cut
    ("2", "2026-03-07 09:00", ("professional", 2))])   # the upgrade, once paid, drops the downgrade
def test_a_scheduled_downgrade_dropped_before_it_applies_is_e_mailed_to_the_admin(case, when, final):
    [path] = CASES.glob(f"{case}-*.yaml")
    doc = simulate(path, "--json").doc
    org = doc["org"]
    scheduled = events(doc, "email", template="downgrade_scheduled")
    assert [(e["at"], e["to"]) for e in events(doc, "email", template="downgrade_not_applied")] == [
        (at(when), f"admin@{org}.test")] and len(scheduled) == 1
    assert [e["at"] for e in events(doc, "downgrade_dropped")] == [at(when)]
    assert (doc["final"]["plan"], doc["final"]["licences"]) == final
