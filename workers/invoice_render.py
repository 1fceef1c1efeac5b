"""An invoice as a standalone HTML document (what the admin downloads)."""

from sqlalchemy import select
from sqlalchemy.orm import Session

from activities.mail import TEMPLATES_DIR
from db.models import Invoice, Organisation, Payment
from domain.money import format_money
from jinja2 import Environment, FileSystemLoader, select_autoescape


def render_invoice_html(session: Session, number: str) -> str:
    invoice = session.scalar(select(Invoice).where(Invoice.number == number))
    if invoice is None:
        raise LookupError(f"unknown invoice {number!r}")
    org = session.get(Organisation, invoice.org_id)
    payments = list(session.scalars(select(Payment).where(Payment.invoice_id == invoice.id).order_by(Payment.attempt)))
    money = lambda amount: format_money(amount, invoice.currency, org.locale)  # noqa: E731
    env = Environment(loader=FileSystemLoader(str(TEMPLATES_DIR)), autoescape=select_autoescape(["html", "j2"]))
    return env.get_template("invoice.html.j2").render(
        org=org, invoice=invoice, payments=payments, money=money,
        lines=[{"description": l.description, "quantity": l.quantity, "unit": money(l.unit_amount),
                "amount": money(l.amount)} for l in invoice.lines])
