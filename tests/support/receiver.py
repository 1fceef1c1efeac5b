"""A reference mail platform receiver: a real HTTP server on loopback that verifies each
webhook's signature with standardwebhooks (401 when it does not verify) and applies a document
only when its version is higher than the one it holds for the org, as DOMAIN.md asks of the
platform. It can be taken down and brought back on the same port, or made slow."""

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from standardwebhooks import Webhook, WebhookVerificationError
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.support.http import free_port


@dataclass
class Received:
    org_id: str
    version: int
    at: float           # time.time() when it arrived
    applied: bool


@dataclass
class Receiver:
    secret: str
    port: int = field(default_factory=free_port)
    delay: float = 0.0              # seconds before answering: a slow platform
    failing: int = 0                # answer 503 to this many verified messages, then apply again
    current: dict[str, dict[str, Any]] = field(default_factory=dict)   # org -> highest document
    log: list[Received] = field(default_factory=list)
    refused: int = 0
    _server: uvicorn.Server | None = None
    _task: asyncio.Task | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/webhooks/billing"

    async def _receive(self, request: Request) -> JSONResponse:
        try:
            body = await request.body()
        except ClientDisconnect:   # the sender gave up (its timeout): nothing to answer
            return JSONResponse({}, status_code=499)
        try:
            message = Webhook(self.secret).verify(body, dict(request.headers))
        except WebhookVerificationError as err:
            self.refused += 1
            return JSONResponse({"error": str(err)}, status_code=401)
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.failing > 0:
            self.failing -= 1
            return JSONResponse({"error": "try again later"}, status_code=503)
        document = message["data"]
        held = self.current.get(document["org_id"])
        applied = message["type"] == "entitlements.updated" and (held is None or document["version"] > held["version"])
        if applied:
            self.current[document["org_id"]] = document
        self.log.append(Received(document["org_id"], document["version"], time.time(), applied))
        return JSONResponse({"applied": applied})

    async def up(self) -> "Receiver":
        app = Starlette(routes=[Route("/webhooks/billing", self._receive, methods=["POST"])])
        self._server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_config=None,
                                                     lifespan="off"))
        self._task = asyncio.create_task(self._server.serve())
        while not self._server.started:
            if self._task.done():
                self._task.result()
            await asyncio.sleep(0.02)
        return self

    async def down(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
            await self._task
            self._server = self._task = None

    async def wait_for(self, predicate, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not predicate(self):
            if time.monotonic() > deadline:
                raise AssertionError(f"receiver: no {what} within {timeout} s; it holds "
                                     f"{ {org: doc['version'] for org, doc in self.current.items()} }")
            await asyncio.sleep(0.1)
