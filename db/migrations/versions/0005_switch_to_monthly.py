"""a yearly org's switch to monthly billing, scheduled for its yearly renewal

Revision ID: 0005
Revises: 0004
"""
import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('subscriptions') as batch:
        batch.add_column(sa.Column('scheduled_cycle', sa.Enum('monthly', 'yearly', name='cycle', native_enum=False,
                                                              length=32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('subscriptions') as batch:
        batch.drop_column('scheduled_cycle')
