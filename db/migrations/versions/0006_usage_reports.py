"""usage reports are facts with a time: the newest report applied per user, and per org for its
contact count (domain.reports); invoice numbers long enough for the longest org id
(INV-<63 characters>-0001 did not fit in 40), e-mail subjects as long as the addresses they name

Revision ID: 0006
Revises: 0005
"""
import sqlalchemy as sa
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('users') as batch:
        batch.add_column(sa.Column('usage_reported_at', sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column('usage_report_id', sa.String(length=200), nullable=True))
    with op.batch_alter_table('organisations') as batch:
        batch.add_column(sa.Column('contacts_reported_at', sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column('contacts_report_id', sa.String(length=200), nullable=True))
    with op.batch_alter_table('invoices') as batch:
        batch.alter_column('number', existing_type=sa.String(length=40), type_=sa.String(length=80),
                           existing_nullable=False)
    with op.batch_alter_table('emails') as batch:
        batch.alter_column('subject', existing_type=sa.String(length=300), type_=sa.Text(), existing_nullable=True)


def downgrade() -> None:
    with op.batch_alter_table('emails') as batch:
        batch.alter_column('subject', existing_type=sa.Text(), type_=sa.String(length=300), existing_nullable=True)
    with op.batch_alter_table('invoices') as batch:
        batch.alter_column('number', existing_type=sa.String(length=80), type_=sa.String(length=40),
                           existing_nullable=False)
    with op.batch_alter_table('organisations') as batch:
        batch.drop_column('contacts_report_id')
        batch.drop_column('contacts_reported_at')
    with op.batch_alter_table('users') as batch:
        batch.drop_column('usage_report_id')
        batch.drop_column('usage_reported_at')
