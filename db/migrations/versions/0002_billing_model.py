"""billing model: the ledger of billed spans, itemised invoice lines, subscriber contacts,
a tier chosen during the trial, typed trial reminders

Revision ID: 0002
Revises: 0001

Data moved over for orgs that exist already:
- contacts split into subscribed (within the tier) and awaiting upgrade;
- a licence-only downgrade is stored without a plan;
- a change waiting for payment is stored as the Update that asked for it;
- trial reminders sent are read from the outbox keys once, into a typed column;
- the ledger starts with what each paid org holds, billed over its current period at the
  catalog price (the catalog of BILLING_CATALOG_PATH, or the shipped one).
"""
import os
from datetime import timezone

import sqlalchemy as sa
from alembic import op

import db.models

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None

OLD_PENDING = {  # kind of the old pending_change -> (operation, request fields)
    "upgrade_from_free": ("upgrade", ("plan", "cycle")), "upgrade": ("upgrade", ("plan",)),
    "add_licences": ("add_licences", ("count",)), "buy_storage": ("buy_storage", ("unit_gb", "count")),
    "buy_addon": ("buy_addon", ("addon",)), "change_tier": ("change_tier", ("contacts",)),
    "switch_to_yearly": ("switch_to_yearly", ()),
}


def upgrade() -> None:
    op.create_table('billed_spans',
                    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
                    sa.Column('org_id', sa.String(length=64), nullable=False),
                    sa.Column('item_kind', sa.String(length=16), nullable=False),
                    sa.Column('item_code', sa.String(length=40), nullable=False),
                    sa.Column('quantity', sa.Integer(), nullable=False),
                    sa.Column('start', db.models.UtcDateTime(timezone=True), nullable=False),
                    sa.Column('end', db.models.UtcDateTime(timezone=True), nullable=False),
                    sa.Column('amount', sa.BigInteger(), nullable=False),
                    sa.Column('invoice_id', sa.Integer(), nullable=True),
                    sa.ForeignKeyConstraint(['invoice_id'], ['invoices.id']),
                    sa.ForeignKeyConstraint(['org_id'], ['organisations.id']),
                    sa.PrimaryKeyConstraint('id'))
    with op.batch_alter_table('billed_spans') as batch:
        batch.create_index(batch.f('ix_billed_spans_org_id'), ['org_id'], unique=False)
    with op.batch_alter_table('invoice_lines') as batch:
        batch.add_column(sa.Column('item_kind', sa.String(length=16), nullable=True))
        batch.add_column(sa.Column('item_code', sa.String(length=40), nullable=True))
        batch.add_column(sa.Column('period_start', db.models.UtcDateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column('period_end', db.models.UtcDateTime(timezone=True), nullable=True))
    with op.batch_alter_table('emails') as batch:
        batch.add_column(sa.Column('trial_reminder_days', sa.Integer(), nullable=True))
    with op.batch_alter_table('subscriptions') as batch:
        batch.add_column(sa.Column('trial_choice_tier', sa.Integer(), nullable=True))
    with op.batch_alter_table('organisations') as batch:
        batch.add_column(sa.Column('contacts_subscribed', sa.Integer(), nullable=False, server_default='0'))
        batch.add_column(sa.Column('contacts_awaiting', sa.Integer(), nullable=False, server_default='0'))
    _move_data(op.get_bind())
    with op.batch_alter_table('organisations') as batch:
        batch.drop_column('contacts')


def _move_data(bind) -> None:
    meta = sa.MetaData()
    orgs = sa.Table('organisations', meta, autoload_with=bind)
    subs = sa.Table('subscriptions', meta, autoload_with=bind)
    emails = sa.Table('emails', meta, autoload_with=bind)
    for org_id, contacts, tier in bind.execute(sa.select(orgs.c.id, orgs.c.contacts, subs.c.tier_contacts)
                                               .join(subs, subs.c.org_id == orgs.c.id)):
        subscribed = min(contacts or 0, tier or 0)
        bind.execute(orgs.update().where(orgs.c.id == org_id)
                     .values(contacts_subscribed=subscribed, contacts_awaiting=(contacts or 0) - subscribed))
    bind.execute(subs.update().where(subs.c.scheduled_plan == subs.c.plan_id).values(scheduled_plan=None))
    for org_id, change in bind.execute(sa.select(subs.c.org_id, subs.c.pending_change)
                                       .where(subs.c.pending_change.is_not(None))):
        operation, names = OLD_PENDING.get((change or {}).get("kind"), (None, ()))
        if operation is None:
            continue
        bind.execute(subs.update().where(subs.c.org_id == org_id).values(pending_change={
            "operation": operation, "request": {name: change.get(name) for name in names},
            "summary": change.get("summary", operation), "priced_at": change.get("requested_at"), "total": 0}))
    for row_id, occasion in bind.execute(sa.select(emails.c.id, emails.c.occasion)
                                         .where(emails.c.template == 'trial_ending')):
        days = occasion.rsplit(":", 1)[-1].rstrip("d")  # the old key, trial:<end>:<days>d, read once
        if days.isdigit():
            bind.execute(emails.update().where(emails.c.id == row_id).values(trial_reminder_days=int(days)))
    _opening_ledger(bind, meta, subs)


def _opening_ledger(bind, meta, subs) -> None:
    from domain.catalog import load_catalog
    catalog = load_catalog(os.environ.get("BILLING_CATALOG_PATH") or None)
    orgs, units = meta.tables['organisations'], sa.Table('storage_units', meta, autoload_with=bind)
    addons, invoices = sa.Table('org_addons', meta, autoload_with=bind), sa.Table('invoices', meta, autoload_with=bind)
    spans = sa.Table('billed_spans', meta, autoload_with=bind)
    tier = next(iter(catalog.tiered_addons.values()), None)
    rows = bind.execute(sa.select(subs, orgs.c.currency).join(orgs, orgs.c.id == subs.c.org_id)
                        .where(subs.c.status.in_(['active', 'cancelling', 'past_due', 'escalated']),
                               subs.c.period_start.is_not(None), subs.c.renews_at.is_not(None)))
    for sub in rows:
        cycle, currency = sub.cycle, sub.currency
        items = []
        if sub.plan_id in catalog.plans and sub.licences:
            items.append(("licence", sub.plan_id, sub.licences, catalog.plan_price(sub.plan_id, currency, cycle)))
        for size, count in bind.execute(sa.select(units.c.size_gb, sa.func.count()).where(units.c.org_id == sub.org_id)
                                        .group_by(units.c.size_gb)):
            if size in catalog.storage_units:
                items.append(("storage", str(size), count, catalog.storage_price(size, currency, cycle)))
        if tier is not None and sub.tier_contacts:
            items.append(("tier", tier.id, sub.tier_contacts // tier.step, tier.price_per_step[currency][cycle]))
        for (addon,) in bind.execute(sa.select(addons.c.addon_id).where(addons.c.org_id == sub.org_id)):
            if addon in catalog.flat_addons:
                items.append(("addon", addon, 1, catalog.flat_addon_price(addon, currency, cycle)))
        start = sub.period_start.replace(tzinfo=timezone.utc) if sub.period_start.tzinfo is None else sub.period_start
        invoice_id = bind.execute(sa.select(invoices.c.id).where(
            invoices.c.org_id == sub.org_id, invoices.c.period_start == sub.period_start,
            invoices.c.kind.in_(['renewal', 'trial_conversion', 'cycle_switch']))
            .order_by(invoices.c.id.desc()).limit(1)).scalar()
        for kind, code, quantity, unit in items:
            bind.execute(spans.insert().values(org_id=sub.org_id, item_kind=kind, item_code=code, quantity=quantity,
                                               start=start, end=sub.renews_at, amount=unit * quantity,
                                               invoice_id=invoice_id))


def downgrade() -> None:
    with op.batch_alter_table('organisations') as batch:
        batch.add_column(sa.Column('contacts', sa.Integer(), nullable=False, server_default='0'))
    bind = op.get_bind()
    meta = sa.MetaData()
    orgs = sa.Table('organisations', meta, autoload_with=bind)
    bind.execute(orgs.update().values(contacts=orgs.c.contacts_subscribed + orgs.c.contacts_awaiting))
    with op.batch_alter_table('organisations') as batch:
        batch.drop_column('contacts_awaiting')
        batch.drop_column('contacts_subscribed')
    with op.batch_alter_table('subscriptions') as batch:
        batch.drop_column('trial_choice_tier')
    with op.batch_alter_table('emails') as batch:
        batch.drop_column('trial_reminder_days')
    with op.batch_alter_table('invoice_lines') as batch:
        for column in ('period_end', 'period_start', 'item_code', 'item_kind'):
            batch.drop_column(column)
    op.drop_table('billed_spans')
