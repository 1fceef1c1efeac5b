"""The default gateway: outcomes follow the test card behind the token; its ledger lives in its
own table, as a real gateway's would live on its side."""

import hashlib

from activities.gateways import ChargeAttempt, GatewayResult
from db.models import GatewayCharge
from db.payments import add_sandbox_charge, sandbox_charge
from db.session import Database
from domain.cards import sandbox_behaviour
from domain.states import ChargeOutcome


class SandboxGateway:
    def __init__(self, db: Database) -> None:
        self.db = db

    def charge(self, attempt: ChargeAttempt) -> GatewayResult:
        key = attempt.key
        with self.db.transaction() as session:
            first = sandbox_charge(session, key)
            if first is not None:   # a repeated key answers with its first result
                return GatewayResult(first.charge_id, ChargeOutcome(first.outcome), first.decline_reason)
            behaviour = sandbox_behaviour(attempt.token)
            outcome = ChargeOutcome.SUCCEEDED if behaviour == "ok" else ChargeOutcome.DECLINED
            reason = None if behaviour == "ok" else behaviour
            charge_id = "ch_" + hashlib.sha256(key.encode()).hexdigest()[:20]
            add_sandbox_charge(session, GatewayCharge(
                idempotency_key=key, charge_id=charge_id, token=attempt.token, amount=attempt.amount,
                currency=attempt.currency, outcome=outcome, decline_reason=reason, created_at=attempt.at))
            return GatewayResult(charge_id, outcome, reason)
