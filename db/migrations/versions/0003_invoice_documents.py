"""invoice documents: the card each payment was made with, an org's billing address

Revision ID: 0003
Revises: 0002
"""
import sqlalchemy as sa
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('payments') as batch:
        batch.add_column(sa.Column('card_brand', sa.String(length=20), nullable=True))
        batch.add_column(sa.Column('card_last4', sa.String(length=4), nullable=True))
    with op.batch_alter_table('organisations') as batch:
        batch.add_column(sa.Column('billing_address', sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('organisations') as batch:
        batch.drop_column('billing_address')
    with op.batch_alter_table('payments') as batch:
        batch.drop_column('card_last4')
        batch.drop_column('card_brand')
