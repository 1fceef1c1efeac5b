"""A dry run renders no document unless asked: `billing simulate` sends the receipts without their
invoice PDF (none rendered, none kept); with `--pdf` they carry it, as in production."""

from pathlib import Path

import pytest
from sqlalchemy import func, select

from db.models import InvoicePdf
from db.session import Database
from workers.simulate.run import load_and_run

SCENARIO = '''
start: "2026-01-31T09:00:00+00:00"
until: P65D
org: {id: dry, admin_email: admin@dry.test, plan: standard, cycle: monthly, card: "4242424242424242",
      users: [{email: b@dry.test, storage_gb: 1}]}
'''


@pytest.mark.parametrize("pdfs, kept", [(False, 0), (True, 2)])
def test_the_receipts_of_a_dry_run_carry_a_pdf_only_when_asked(tmp_path: Path, pdfs: bool, kept: int):
    (tmp_path / "scenario.yaml").write_text(SCENARIO)
    url = f"sqlite:///{tmp_path / 'simulated.db'}"
    doc = load_and_run(tmp_path / "scenario.yaml", url, keep_org=True, pdfs=pdfs)
    receipts = [event for event in doc["events"] if event["type"] == "email" and event["template"] == "receipt"]
    assert len(receipts) == 2     # two renewals paid, each with its receipt sent
    db = Database(url)
    try:
        with db.transaction() as session:
            assert session.scalar(select(func.count()).select_from(InvoicePdf)) == kept
    finally:
        db.dispose()
