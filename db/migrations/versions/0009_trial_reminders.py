"""trial reminders: the reminders an org's trial has had are part of its state
(subscriptions.trial_reminders_sent), no longer read back from the e-mail outbox by template name;
filled from the outbox's sent trial_ending rows, whose trial_reminder_days column goes

Revision ID: 0009
Revises: 0008
"""
import sqlalchemy as sa
from alembic import op

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('subscriptions') as batch:
        batch.add_column(sa.Column('trial_reminders_sent', sa.JSON(), nullable=False, server_default='[]'))
    bind = op.get_bind()
    subs = sa.table('subscriptions', sa.column('org_id', sa.String), sa.column('trial_reminders_sent', sa.JSON))
    emails = sa.table('emails', sa.column('org_id', sa.String), sa.column('template', sa.String),
                      sa.column('status', sa.String), sa.column('trial_reminder_days', sa.Integer))
    sent: dict[str, set[int]] = {}
    for org_id, days in bind.execute(sa.select(emails.c.org_id, emails.c.trial_reminder_days).where(
            emails.c.template == 'trial_ending', emails.c.status == 'sent', emails.c.trial_reminder_days.is_not(None))):
        sent.setdefault(org_id, set()).add(days)
    for org_id, days in sent.items():
        bind.execute(subs.update().where(subs.c.org_id == org_id).values(trial_reminders_sent=sorted(days)))
    with op.batch_alter_table('emails') as batch:
        batch.drop_column('trial_reminder_days')


def downgrade() -> None:
    with op.batch_alter_table('emails') as batch:
        batch.add_column(sa.Column('trial_reminder_days', sa.Integer(), nullable=True))
    bind = op.get_bind()
    emails = sa.table('emails', sa.column('id', sa.Integer), sa.column('template', sa.String),
                      sa.column('occasion', sa.String), sa.column('trial_reminder_days', sa.Integer))
    for row_id, occasion in bind.execute(sa.select(emails.c.id, emails.c.occasion)
                                         .where(emails.c.template == 'trial_ending')):
        days = occasion.rsplit(":", 1)[-1].rstrip("d")   # trial:<end>:<days>d (domain.emails.trial_ending)
        if days.isdigit():
            bind.execute(emails.update().where(emails.c.id == row_id).values(trial_reminder_days=int(days)))
    with op.batch_alter_table('subscriptions') as batch:
        batch.drop_column('trial_reminders_sent')
