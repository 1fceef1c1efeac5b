"""stripe: the Stripe gateway's records: each org's Customer and attached PaymentMethod
(stripe_customers), each charge attempt's PaymentIntent written before it is created
(stripe_payment_intents, one per org, invoice and attempt) and the webhook events applied
(stripe_events, by event id)

Revision ID: 0013
Revises: 0012
"""
import sqlalchemy as sa
from alembic import op

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('stripe_customers',
                    sa.Column('org_id', sa.String(length=80), nullable=False),
                    sa.Column('customer_id', sa.String(length=80), nullable=False),
                    sa.Column('payment_method_token', sa.String(length=80), nullable=True),
                    sa.Column('payment_method_id', sa.String(length=80), nullable=True),
                    sa.Column('card_brand', sa.String(length=20), nullable=True),
                    sa.Column('card_last4', sa.String(length=4), nullable=True),
                    sa.Column('card_exp_month', sa.Integer(), nullable=True),
                    sa.Column('card_exp_year', sa.Integer(), nullable=True),
                    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
                    sa.PrimaryKeyConstraint('org_id'),
                    sa.UniqueConstraint('customer_id'))
    op.create_table('stripe_payment_intents',
                    sa.Column('idempotency_key', sa.String(length=200), nullable=False),
                    sa.Column('org_id', sa.String(length=80), nullable=False),
                    sa.Column('invoice_number', sa.String(length=80), nullable=False),
                    sa.Column('attempt', sa.Integer(), nullable=False),
                    sa.Column('intent_id', sa.String(length=80), nullable=True),
                    sa.Column('stage', sa.String(length=20), nullable=False),
                    sa.Column('status', sa.String(length=40), nullable=True),
                    sa.Column('decline_reason', sa.String(length=60), nullable=True),
                    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
                    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
                    sa.PrimaryKeyConstraint('idempotency_key'),
                    sa.UniqueConstraint('intent_id'),
                    sa.UniqueConstraint('org_id', 'invoice_number', 'attempt', name='uq_stripe_intent_attempt'))
    op.create_index('ix_stripe_payment_intents_org_id', 'stripe_payment_intents', ['org_id'])
    op.create_table('stripe_events',
                    sa.Column('event_id', sa.String(length=80), nullable=False),
                    sa.Column('type', sa.String(length=80), nullable=False),
                    sa.Column('intent_id', sa.String(length=80), nullable=True),
                    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
                    sa.PrimaryKeyConstraint('event_id'))


def downgrade() -> None:
    op.drop_table('stripe_events')
    op.drop_index('ix_stripe_payment_intents_org_id', table_name='stripe_payment_intents')
    op.drop_table('stripe_payment_intents')
    op.drop_table('stripe_customers')
