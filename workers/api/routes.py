"""The service's routes beyond the probes: one list, each route beside what it serves."""

from starlette.routing import BaseRoute

ROUTES: list[BaseRoute] = []
