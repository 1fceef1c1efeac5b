"""storage waiting order and units given automatically

Revision ID: 0004
Revises: 0003
"""
import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('users') as batch:
        batch.add_column(sa.Column('blocked_at', sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table('storage_units') as batch:
        batch.add_column(sa.Column('auto_allocated', sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table('storage_units') as batch:
        batch.drop_column('auto_allocated')
    with op.batch_alter_table('users') as batch:
        batch.drop_column('blocked_at')
