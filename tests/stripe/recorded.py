"""Stripe's answers where localstripe lacks them (docs/stripe.md): a small real HTTP server on
loopback that answers each request with the next recorded response for its route (JSON bodies
from Stripe's API reference, tests/fixtures/stripe) and keeps what it was sent."""

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "stripe"


def recorded(name: str) -> dict:
    return json.loads((FIXTURES / f"{name}.json").read_text())


@dataclass(frozen=True)
class Sent:
    method: str
    path: str
    form: dict[str, str]
    idempotency_key: str | None


@dataclass
class RecordedStripe:
    """answers: route ('POST /v1/payment_intents/*/confirm') -> [(status, fixture name), ...]."""
    answers: dict[str, list[tuple[int, str]]]
    sent: list[Sent] = field(default_factory=list)

    def app(self) -> Starlette:
        async def answer(request: Request) -> JSONResponse:
            form = dict(parse_qsl((await request.body()).decode()))
            self.sent.append(Sent(request.method, request.url.path, form, request.headers.get("idempotency-key")))
            for route, queue in self.answers.items():
                method, pattern = route.split(" ")
                if method == request.method and re.fullmatch(pattern.replace("*", "[^/]+"), request.url.path) and queue:
                    status, name = queue.pop(0) if len(queue) > 1 else queue[0]
                    return JSONResponse(recorded(name), status_code=status)
            return JSONResponse({"error": {"type": "invalid_request_error",
                                           "message": f"no recorded answer for {request.method} {request.url.path}"}},
                                status_code=404)
        return Starlette(routes=[Route("/{path:path}", answer, methods=["GET", "POST", "DELETE"])])

    def to(self, suffix: str) -> list[Sent]:
        return [s for s in self.sent if s.path.endswith(suffix)]
