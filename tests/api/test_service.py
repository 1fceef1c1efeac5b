"""The HTTP service (workers/api): its probes, the API-key guard of /v1 routes, and the process
`python -m workers.api` as deploy/ starts it."""

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from db.session import Database
from tests.support.http import call, free_port, request
from workers.api.app import Service, api_key_required, create_app

ROOT = Path(__file__).resolve().parents[2]


@api_key_required
async def whoami(request: Request) -> JSONResponse:
    return JSONResponse({"caller": "the platform"})


async def test_probes_answer_and_readiness_follows_the_database(sqlite_db, tmp_path):
    from tests.support.http import serving
    gone = Database(f"sqlite:///{tmp_path}/missing/billing.db", create_folder=False)
    async with serving(create_app(Service(db=sqlite_db, api_key="k"), [])) as ready, \
            serving(create_app(Service(db=gone, api_key="k"), [])) as not_ready:
        assert (await call("GET", f"{ready}/healthz")).body == {"status": "ok"}
        assert (await call("GET", f"{ready}/readyz")).body == {"status": "ready"}
        alive, unready = await call("GET", f"{not_ready}/healthz"), await call("GET", f"{not_ready}/readyz")
    assert alive.status == 200
    assert unready.status == 503 and unready.body["error"].startswith("database unreachable: ")
    assert "\n" not in unready.body["error"]


async def test_a_v1_route_needs_the_api_key(sqlite_db):
    from tests.support.http import serving
    routes = [Route("/v1/whoami", whoami)]
    async with serving(create_app(Service(db=sqlite_db, api_key="s3cret"), routes)) as url, \
            serving(create_app(Service(db=sqlite_db, api_key=None), routes)) as unconfigured:
        right = await call("GET", f"{url}/v1/whoami", headers={"Authorization": "Bearer s3cret"})
        missing = await call("GET", f"{url}/v1/whoami")
        wrong = await call("GET", f"{url}/v1/whoami", headers={"Authorization": "Bearer s3cret-not"})
        basic = await call("GET", f"{url}/v1/whoami", headers={"Authorization": "Basic s3cret"})
        closed = await call("GET", f"{unconfigured}/v1/whoami", headers={"Authorization": "Bearer s3cret"})
    assert (right.status, right.body) == (200, {"caller": "the platform"})
    assert [r.status for r in (missing, wrong, basic)] == [401, 401, 401]
    assert missing.body == {"error": "missing or wrong API key (Authorization: Bearer <key>)"}
    assert closed.status == 503 and "BILLING_API_KEY" in closed.body["error"]


async def test_the_service_process_reads_its_key_from_a_file_and_stops_on_sigterm(sqlite_url, sqlite_db, tmp_path):
    key_file = tmp_path / "api-key"
    key_file.write_text("from-a-secret\n")
    port = free_port()
    env = {**os.environ, "BILLING_DATABASE_URL": sqlite_url, "BILLING_API_PORT": str(port),
           "BILLING_API_KEY_FILE": str(key_file)}
    env.pop("BILLING_API_KEY", None)
    process = subprocess.Popen([sys.executable, "-m", "workers.api"], cwd=ROOT, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        for _ in range(200):
            try:
                reply = await asyncio.to_thread(request, "GET", f"http://127.0.0.1:{port}/readyz", timeout=1)
                break
            except OSError:
                assert process.poll() is None, process.stdout.read()
                await asyncio.sleep(0.05)
        else:
            pytest.fail("the service did not answer within 10 s")
        assert (reply.status, reply.body) == (200, {"status": "ready"})
    finally:
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=20)
    # uvicorn drains, then re-raises the signal so the parent sees why it stopped.
    assert process.returncode in (0, -signal.SIGTERM), output
    assert "Application shutdown complete" in output
    assert "from-a-secret" not in output
