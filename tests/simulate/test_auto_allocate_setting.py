"""Auto-allocation of storage is opt-in (DOMAIN.md, add-ons): an admin turns it on or off with
`billing storage auto-allocate ORG on|off` (the `auto_allocate` Update and scenario action),
audited. Run as a new user would, through `billing simulate`."""

from tests.simulate.conftest import at, events, simulate

SCENARIO = """
start: "2026-03-01T09:00:00+00:00"
until: P20D
org:
  id: autoset
  admin_email: admin@autoset.test
  plan: standard
  cycle: monthly
  card: "4242424242424242"
  users:
    - {email: admin@autoset.test, storage_gb: 1}
    - {email: big@autoset.test, storage_gb: 40}
actions:
  - {at: P1D, do: buy_storage, unit_gb: 25, count: 1}
  - {at: P2D, do: auto_allocate, setting: on, requested_by: admin@autoset.test, reason: "no more blocked users"}
  - {at: P3D, do: auto_allocate, setting: "on", requested_by: admin@autoset.test}
  - {at: P4D, do: auto_allocate, setting: off, requested_by: admin@autoset.test}
"""


def test_turning_auto_allocation_on_gives_a_blocked_user_a_free_unit_and_is_audited(tmp_path):
    path = tmp_path / "auto.yaml"
    path.write_text(SCENARIO)
    doc = simulate(path, "--json").doc
    # Over Standard's 30 GB from the start; the unit bought on day 1 stays free until the setting is on.
    assert [e["at"] for e in events(doc, "user_blocked", user="big@autoset.test")] == [at("2026-03-01 09:00")]
    assert [e["at"] for e in events(doc, "user_unblocked", user="big@autoset.test")] == [at("2026-03-03 09:00")]
    assert [(e["at"], e["unit_gb"]) for e in events(doc, "storage_auto_allocated")] == [(at("2026-03-03 09:00"), 25)]
    assert [(e["at"], e["setting"], e["requested_by"]) for e in events(doc, "action", action="auto_allocate")] == [
        (at("2026-03-03 09:00"), "on", "admin@autoset.test"), (at("2026-03-05 09:00"), "off", "admin@autoset.test")]
    [refused] = events(doc, "action_rejected", action="auto_allocate")
    assert refused["at"] == at("2026-03-04 09:00") and "already on" in refused["error"]
    assert doc["final"]["blocked_users"] == []   # turning it off takes back no unit
