"""`python -m workers.api`: the HTTP service, on BILLING_API_HOST:BILLING_API_PORT."""

import uvicorn

from db.session import Database
from workers.api.app import Service, create_app
from workers.api.routes import ROUTES
from workers.runtime import logs
from workers.runtime.config import load_settings


def main() -> None:
    settings = load_settings()
    logs.configure(settings.log_format)
    app = create_app(Service(db=Database(settings.database_url, create_folder=False), api_key=settings.api_key_value),
                     ROUTES)
    # log_config=None: the service logs through the same handlers and format as the worker.
    uvicorn.run(app, host=settings.api_host, port=settings.api_port, log_config=None,
                timeout_graceful_shutdown=settings.graceful_shutdown_seconds)


if __name__ == "__main__":
    main()
