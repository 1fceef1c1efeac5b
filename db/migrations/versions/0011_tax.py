"""tax: the buyer's country and tax number (organisations.country, tax_id; none for the orgs
there were: no tax), and each invoice's subtotal and tax as issued (invoices.subtotal, tax_name,
tax_rate, tax_base, tax). Invoices issued before had no tax: their subtotal is their lines, that
is their total plus the account credit they used.

Revision ID: 0011
Revises: 0010
"""
import sqlalchemy as sa
from alembic import op

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('organisations') as batch:
        batch.add_column(sa.Column('country', sa.String(2), nullable=True))
        batch.add_column(sa.Column('tax_id', sa.String(40), nullable=True))
    with op.batch_alter_table('invoices') as batch:
        batch.add_column(sa.Column('subtotal', sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column('tax_name', sa.String(40), nullable=True))
        batch.add_column(sa.Column('tax_rate', sa.String(20), nullable=False, server_default='0'))
        batch.add_column(sa.Column('tax_base', sa.BigInteger(), nullable=False, server_default='0'))
        batch.add_column(sa.Column('tax', sa.BigInteger(), nullable=False, server_default='0'))
    invoices = sa.table('invoices', sa.column('subtotal', sa.BigInteger), sa.column('total', sa.BigInteger),
                        sa.column('credit_applied', sa.BigInteger))
    op.get_bind().execute(invoices.update().values(subtotal=invoices.c.total + invoices.c.credit_applied))
    with op.batch_alter_table('invoices') as batch:
        batch.alter_column('subtotal', existing_type=sa.BigInteger(), nullable=False)


def downgrade() -> None:
    with op.batch_alter_table('invoices') as batch:
        for column in ('tax', 'tax_base', 'tax_rate', 'tax_name', 'subtotal'):
            batch.drop_column(column)
    with op.batch_alter_table('organisations') as batch:
        batch.drop_column('tax_id')
        batch.drop_column('country')
