"""`python -m workers.api`: the HTTP service, on BILLING_API_HOST:BILLING_API_PORT."""

import uvicorn

from db.session import Database
from workers.api.app import Service, create_app
from workers.api.routes import ROUTES
from workers.api.stripe_webhooks import OrgSignals
from workers.runtime import logs
from workers.runtime.config import load_settings
from workers.runtime.temporal import connect
from workers.runtime.worker import gateway_from


def main() -> None:
    settings = load_settings()
    logs.configure(settings.log_format)
    db = Database(settings.database_url, create_folder=False)
    service = Service(db=db, api_key=settings.api_key_value,
                      stripe_webhook_secret=settings.stripe_webhook_secret_value,
                      org_signals=OrgSignals(lambda: connect(settings), settings.temporal_task_queue),
                      stripe_gateway=gateway_from(settings, db) if settings.gateway == "stripe" else None)
    app = create_app(service, ROUTES)
    # log_config=None: the service logs through the same handlers and format as the worker.
    uvicorn.run(app, host=settings.api_host, port=settings.api_port, log_config=None,
                timeout_graceful_shutdown=settings.graceful_shutdown_seconds)


if __name__ == "__main__":
    main()
