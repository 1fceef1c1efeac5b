"""The service's application: its routes, the API-key guard, the probes."""

import hmac
import logging
from dataclasses import dataclass
from typing import Any, Awaitable, Callable

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from db.session import Database

log = logging.getLogger("billing.api")

Endpoint = Callable[[Request], Awaitable[Response]]


@dataclass
class Service:
    """What every route may use; kept in `app.state.service`."""
    db: Database
    api_key: str | None
    # Stripe's webhook signing secret (STRIPE_WEBHOOK_SECRET or _FILE), and what signals the org
    # workflows (workers/api/stripe_webhooks.py).
    stripe_webhook_secret: str | None = None
    org_signals: Any = None
    # The Stripe gateway (BILLING_GATEWAY=stripe): refunds a second payment of a paid invoice.
    stripe_gateway: Any = None


def error(status: int, message: str) -> JSONResponse:
    """Every refusal is one line naming the problem, as the CLI's are."""
    return JSONResponse({"error": message}, status_code=status)


def service_of(request: Request) -> Service:
    return request.app.state.service


def api_key_required(endpoint: Endpoint) -> Endpoint:
    """A /v1 route for machines we gave a key: `Authorization: Bearer <key>`. Compared in constant
    time; with no key configured the route answers 503 rather than opening up."""

    async def guarded(request: Request) -> Response:
        expected = service_of(request).api_key
        if not expected:
            return error(503, "the API key is not configured (BILLING_API_KEY or BILLING_API_KEY_FILE)")
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), expected.encode()):
            return error(401, "missing or wrong API key (Authorization: Bearer <key>)")
        return await endpoint(request)

    guarded.__name__ = getattr(endpoint, "__name__", "guarded")
    return guarded


async def healthz(request: Request) -> Response:
    """The process answers (liveness)."""
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    """The database answers (readiness): without it no route can do its work."""
    try:
        service_of(request).db.ping()
    except Exception as err:  # noqa: BLE001 - any failure means not ready; said in one line
        return error(503, f"database unreachable: {' '.join(str(err).split())[:200]}")
    return JSONResponse({"status": "ready"})


PROBES: list[BaseRoute] = [Route("/healthz", healthz), Route("/readyz", readyz)]


def create_app(service: Service, routes: list[BaseRoute]) -> Starlette:
    app = Starlette(routes=[*PROBES, *routes])
    app.state.service = service
    return app
