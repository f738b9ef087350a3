"""Serve the HTTP API (SPEC section 12) on API_HOST:API_PORT against the configured Temporal
server and database, like worker.py. The interactive documentation is at /docs, the OpenAPI
document at /openapi.json."""

from __future__ import annotations

import sys

from subchange.settings import ConfigurationError, get_settings


def main() -> int:
    try:
        settings = get_settings()
    except ConfigurationError as error:
        print(error, file=sys.stderr)
        return 2
    import uvicorn

    from subchange.api.app import create_app
    from subchange.app.logs import configure_logging
    from subchange.app.tracing import configure_tracing

    configure_logging(settings.log_format)
    configure_tracing("api")  # before create_app: its engine and routes are traced
    uvicorn.run(create_app(settings), host=settings.api_host, port=settings.api_port,
                log_config=None, proxy_headers=False, server_header=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
