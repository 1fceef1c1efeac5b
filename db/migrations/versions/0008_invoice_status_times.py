"""invoice status times: when an invoice was voided, written off (uncollectible) or credited, kept
on the invoice (it had only paid_at) instead of read back from the event log; filled from the log

Revision ID: 0008
Revises: 0007
"""
import sqlalchemy as sa
from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None

COLUMNS = {"void": "voided_at", "uncollectible": "uncollectible_at", "credited": "credited_at"}


def upgrade() -> None:
    with op.batch_alter_table('invoices') as batch:
        for column in COLUMNS.values():
            batch.add_column(sa.Column(column, sa.DateTime(timezone=True), nullable=True))
    bind = op.get_bind()
    invoices = sa.table('invoices', sa.column('id', sa.Integer), sa.column('number', sa.String),
                        sa.column('org_id', sa.String), sa.column('status', sa.String),
                        *(sa.column(column, sa.DateTime(timezone=True)) for column in COLUMNS.values()))
    events = sa.table('org_events', sa.column('id', sa.Integer), sa.column('org_id', sa.String),
                      sa.column('at', sa.DateTime(timezone=True)), sa.column('type', sa.String),
                      sa.column('data', sa.JSON))
    # The first time the log saw each invoice take its status, read once.
    took: dict[tuple[str, str, str], object] = {}
    for org_id, at, data in bind.execute(sa.select(events.c.org_id, events.c.at, events.c.data)
                                         .where(events.c.type == 'invoice').order_by(events.c.id)):
        took.setdefault((org_id, (data or {}).get("number"), (data or {}).get("status")), at)
    for invoice_id, org_id, number, status in bind.execute(
            sa.select(invoices.c.id, invoices.c.org_id, invoices.c.number, invoices.c.status)
            .where(invoices.c.status.in_(list(COLUMNS)))):
        at = took.get((org_id, number, status))
        if at is not None:
            bind.execute(invoices.update().where(invoices.c.id == invoice_id).values({COLUMNS[status]: at}))


def downgrade() -> None:
    with op.batch_alter_table('invoices') as batch:
        for column in COLUMNS.values():
            batch.drop_column(column)
