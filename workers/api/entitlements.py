"""GET /v1/orgs/{id}/entitlements: the org's current entitlements document, the same a webhook
carries (docs/entitlements.schema.json), for a platform that was away or wants to check."""

import asyncio

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from db.entitlements import current_document
from domain.limits import shown
from workers.api.app import api_key_required, error, service_of


@api_key_required
async def org_entitlements(request: Request) -> Response:
    org_id = request.path_params["org_id"]
    db = service_of(request).db

    def read() -> dict | None:
        with db.transaction() as session:
            return current_document(session, org_id)
    document = await asyncio.to_thread(read)
    if document is None:
        return error(404, f"unknown org {shown(org_id)}")
    return JSONResponse(document, headers={"ETag": f'"{document["version"]}"'})


ENTITLEMENT_ROUTES = [Route("/v1/orgs/{org_id}/entitlements", org_entitlements, methods=["GET"])]
