"""invoice PDFs: each invoice's PDF rendered once per state of it (a digest of its HTML) and
kept, for the e-mails that carry it and `billing invoice render`

Revision ID: 0012
Revises: 0011
"""
import sqlalchemy as sa
from alembic import op

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'invoice_pdfs',
        sa.Column('id', sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column('invoice_id', sa.Integer(), sa.ForeignKey('invoices.id'), nullable=False),
        sa.Column('state', sa.String(length=64), nullable=False),
        sa.Column('pdf', sa.LargeBinary(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint('invoice_id', 'state'),
    )
    op.create_index('ix_invoice_pdfs_invoice_id', 'invoice_pdfs', ['invoice_id'])


def downgrade() -> None:
    op.drop_index('ix_invoice_pdfs_invoice_id', table_name='invoice_pdfs')
    op.drop_table('invoice_pdfs')
