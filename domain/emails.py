"""The e-mails decisions send: one function per template, naming its context. Occasions are
the outbox keys (one e-mail per org, template, occasion and recipient)."""

from datetime import datetime

from domain.decisions import Email, EmailLine
from domain.periods import last_day_billed


def trial_ending(trial_ends_at: datetime, days: int, trial_plan_name: str) -> Email:
    return Email("trial_ending", f"trial:{trial_ends_at.isoformat()}:{days}d",
                 values={"days_left": days, "trial_plan_name": trial_plan_name},
                 dates={"trial_ends_on": trial_ends_at}, trial_reminder_days=days)


def trial_expired(trial_ends_at: datetime, free_plan_name: str) -> Email:
    return Email("trial_expired", f"trial:{trial_ends_at.isoformat()}", values={"plan_name": free_plan_name})


def plan_changed(occasion: str, from_plan: str, to_plan: str, from_name: str, to_name: str, reason: str,
                 effective: datetime) -> Email:
    return Email("plan_changed", f"plan:{occasion}:{from_plan}->{to_plan}",
                 values={"from_plan_name": from_name, "to_plan_name": to_name, "reason": reason},
                 dates={"effective_on": effective})


def receipt(invoice: str, amount: int, card: str | None, lines: list[EmailLine],
            period_start: datetime | None, period_end: datetime | None, credit_applied: int = 0) -> Email:
    """`amount`: the invoice's total, what was charged; `credit_applied`: the part of its lines
    the account credit paid. Below zero it is a credit note: nothing was paid, the org keeps the
    amount as credit for its next invoices, and it is told so in an e-mail of its own."""
    if period_start and period_end:
        period_end = last_day_billed(period_start, period_end)
    dates = {name: moment for name, moment in (("period_start", period_start), ("period_end", period_end)) if moment}
    if amount < 0:
        return Email("credit_note", f"credit_note:{invoice}",
                     values={"invoice_number": invoice, "period_start": None, "period_end": None},
                     money={"amount": amount, "credited": -amount}, dates=dates, lines=lines, attach_invoice=invoice)
    money = {"amount": amount}
    if credit_applied:
        money["credit_applied"] = credit_applied
    return Email("receipt", f"receipt:{invoice}",
                 values={"invoice_number": invoice, "card": card if amount > 0 else None, "period_start": None,
                         "period_end": None, "credit_applied": None},
                 money=money, dates=dates, lines=lines, attach_invoice=invoice)


def payment_failed(invoice: str, attempt: int, amount: int, reason: str | None, next_retry: datetime | None,
                   final_action: str | None) -> Email:
    return Email("payment_failed", f"failed:{invoice}:{attempt}",
                 values={"invoice_number": invoice, "attempt": attempt, "reason": reason or "declined",
                         "final_action": final_action, "grace_note": None, "next_retry_on": None},
                 money={"amount": amount}, dates={"next_retry_on": next_retry} if next_retry else {},
                 attach_invoice=invoice)


def escalation(invoice: str, attempt: int, staff_email: str, licences: int, amount: int, first_response_due: datetime,
               determination_due: datetime) -> Email:
    return Email("escalation", f"escalation:{invoice}:{attempt}", to=[staff_email],
                 values={"severity": "S1-Critical", "reason": "payment_failed", "licences": licences,
                         "invoice_number": invoice,
                         "first_response_due": f"{first_response_due:%Y-%m-%d %H:%M} UTC",
                         "determination_due": f"{determination_due:%Y-%m-%d %H:%M} UTC"},
                 money={"amount": amount})


def downgrade_scheduled(occasion: str, from_name: str, to_name: str, licences: int, requested_by: str,
                        effective: datetime) -> Email:
    return Email("downgrade_scheduled", occasion,
                 values={"from_plan_name": from_name, "to_plan_name": to_name, "licences": licences,
                         "requested_by": requested_by},
                 dates={"effective_on": effective})


def cancellation_scheduled(occasion: str, plan_name: str, effective: datetime) -> Email:
    return Email("cancellation_scheduled", occasion, values={"plan_name": plan_name}, dates={"effective_on": effective})


def downgrade_cancelled(occasion: str, plan_name: str, licences: int, to_plan_name: str, to_licences: int,
                        cancelled_by: str, renews: datetime) -> Email:
    """The downgrade announced by downgrade_scheduled will not happen."""
    return Email("downgrade_cancelled", occasion,
                 values={"plan_name": plan_name, "licences": licences, "to_plan_name": to_plan_name,
                         "to_licences": to_licences, "cancelled_by": cancelled_by},
                 dates={"renews_on": renews})


def downgrade_not_applied(occasion: str, plan_name: str, licences: int, to_plan_name: str, to_licences: int,
                          why: str, renews: datetime, **values: int | str) -> Email:
    """The downgrade announced by downgrade_scheduled was not applied. `why`: user_cap (the
    plan allows fewer users than the org has), users (every user needs a licence), upgrade or
    licences_bought (a later paid change it would undo)."""
    return Email("downgrade_not_applied", occasion,
                 values={"plan_name": plan_name, "licences": licences, "to_plan_name": to_plan_name,
                         "to_licences": to_licences, "why": why, "users": None, "user_cap": None, "bought": None,
                         **values},
                 dates={"renews_on": renews})


def cancellation_undone(occasion: str, plan_name: str, renews: datetime) -> Email:
    """The cancellation announced by cancellation_scheduled will not happen."""
    return Email("cancellation_undone", occasion, values={"plan_name": plan_name}, dates={"renews_on": renews})
