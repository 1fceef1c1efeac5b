"""The service's routes beyond the probes: one list, each route beside what it serves."""

from starlette.routing import BaseRoute

from workers.api import stripe_webhooks
from workers.api.entitlements import ENTITLEMENT_ROUTES

ROUTES: list[BaseRoute] = []
ROUTES += ENTITLEMENT_ROUTES
ROUTES += stripe_webhooks.ROUTES   # POST /webhooks/stripe: signed by Stripe, not behind the API key
