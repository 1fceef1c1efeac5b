"""entitlements: the versions of each org's entitlements told to the mail platform (the outbox
of their webhooks), the endpoints' delivery health and what each endpoint has confirmed

Revision ID: 0010
Revises: 0009
"""
import sqlalchemy as sa
from alembic import op

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'entitlement_versions',
        sa.Column('id', sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column('org_id', sa.String(64), nullable=False),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.Column('digest', sa.String(64), nullable=False),
        sa.Column('document', sa.JSON(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint('org_id', 'version'))
    op.create_table(
        'webhook_endpoints',
        sa.Column('name', sa.String(100), primary_key=True),
        sa.Column('url', sa.Text(), nullable=False),
        sa.Column('state', sa.String(16), nullable=False),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('failures', sa.BigInteger(), nullable=False),
        sa.Column('last_error', sa.Text(), nullable=True),
        sa.Column('failing_since', sa.DateTime(timezone=True), nullable=True),
        sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('last_delivered_at', sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        'entitlement_deliveries',
        sa.Column('endpoint', sa.String(100), primary_key=True),
        sa.Column('org_id', sa.String(64), primary_key=True),
        sa.Column('delivered_version', sa.Integer(), nullable=False),
        sa.Column('delivered_at', sa.DateTime(timezone=True), nullable=False))


def downgrade() -> None:
    op.drop_table('entitlement_deliveries')
    op.drop_table('webhook_endpoints')
    op.drop_table('entitlement_versions')
