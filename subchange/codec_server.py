"""A codec server: lets the Web UI and `temporal --codec-endpoint` show decrypted payloads to
those who hold CODEC_SERVER_TOKEN (sent as `Authorization: Bearer <token>`).

    python -m subchange.codec_server --port 8081 --web-ui http://localhost:8233
    python -m subchange.codec_server --new-key k2      # print a fresh PAYLOAD_KEYS entry

Protocol (docs.temporal.io, "codec server"): POST /encode and /decode with a JSON `Payloads`
body; CORS for the Web UI's origin.
"""

from __future__ import annotations

import argparse
import hmac
import sys

from aiohttp import hdrs, web
from google.protobuf import json_format
from temporalio.api.common.v1 import Payloads

from subchange.codec import EncryptionCodec, new_key_setting, parse_keys
from subchange.settings import ConfigurationError, get_settings


def build_app(codec: EncryptionCodec, *, token: str, web_ui: str | None) -> web.Application:
    def cors(request: web.Request, response: web.StreamResponse) -> web.StreamResponse:
        if web_ui and request.headers.get(hdrs.ORIGIN) == web_ui:
            response.headers[hdrs.ACCESS_CONTROL_ALLOW_ORIGIN] = web_ui
            response.headers[hdrs.ACCESS_CONTROL_ALLOW_METHODS] = "POST"
            response.headers[hdrs.ACCESS_CONTROL_ALLOW_HEADERS] = (
                "content-type,x-namespace,authorization")
            response.headers[hdrs.ACCESS_CONTROL_ALLOW_CREDENTIALS] = "true"
        return response

    async def options(request: web.Request) -> web.StreamResponse:
        return cors(request, web.Response())

    def handler(encode: bool):
        async def handle(request: web.Request) -> web.StreamResponse:
            supplied = request.headers.get(hdrs.AUTHORIZATION, "").removeprefix("Bearer ")
            if not token or not hmac.compare_digest(supplied, token):
                return cors(request, web.Response(status=401, text="a valid token is needed"))
            payloads = json_format.Parse(await request.read(), Payloads())
            method = codec.encode if encode else codec.decode
            try:
                result = Payloads(payloads=await method(payloads.payloads))
            except ValueError as error:
                return cors(request, web.Response(status=400, text=str(error)))
            return cors(request, web.json_response(text=json_format.MessageToJson(result)))
        return handle

    app = web.Application()
    app.add_routes([web.post("/encode", handler(True)), web.post("/decode", handler(False)),
                    web.options("/encode", options), web.options("/decode", options)])
    return app


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m subchange.codec_server",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081)
    parser.add_argument("--web-ui", help="the Web UI's origin, allowed by CORS")
    parser.add_argument("--new-key", metavar="KEY_ID", help="print a new PAYLOAD_KEYS entry")
    args = parser.parse_args(argv)
    if args.new_key:
        print(new_key_setting(args.new_key))
        return 0
    try:
        settings = get_settings()
    except ConfigurationError as error:
        print(error, file=sys.stderr)
        return 2
    if not settings.payload_keys or not settings.codec_server_token:
        print("PAYLOAD_KEYS and CODEC_SERVER_TOKEN must both be set", file=sys.stderr)
        return 2
    codec = EncryptionCodec(parse_keys(settings.payload_keys))
    web.run_app(build_app(codec, token=settings.codec_server_token, web_ui=args.web_ui),
                host=args.host, port=args.port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
