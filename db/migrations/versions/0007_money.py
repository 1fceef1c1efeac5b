"""money: the account credit an invoice used (credit notes and the credit they leave), and the
record of each attempt to open an org on a paid plan

Revision ID: 0007
Revises: 0006
"""
import sqlalchemy as sa
from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('invoices') as batch:
        batch.add_column(sa.Column('credit_applied', sa.BigInteger(), nullable=False, server_default='0'))
    op.create_table(
        'opening_attempts',
        sa.Column('id', sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column('org_id', sa.String(length=64), nullable=False),
        sa.Column('attempt', sa.Integer(), nullable=False),
        sa.Column('outcome', sa.String(length=12), nullable=False),
        sa.Column('decline_reason', sa.String(length=60), nullable=True),
        sa.Column('card_brand', sa.String(length=20), nullable=True),
        sa.Column('card_last4', sa.String(length=4), nullable=True),
        sa.Column('at', sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint('org_id', 'attempt'))
    op.create_index('ix_opening_attempts_org_id', 'opening_attempts', ['org_id'])


def downgrade() -> None:
    op.drop_index('ix_opening_attempts_org_id', table_name='opening_attempts')
    op.drop_table('opening_attempts')
    with op.batch_alter_table('invoices') as batch:
        batch.drop_column('credit_applied')
