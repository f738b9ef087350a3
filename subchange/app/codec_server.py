"""A codec server: lets the Web UI and `temporal --codec-endpoint` show decrypted payloads to
those who hold CODEC_SERVER_TOKEN.

    python -m subchange.app.codec_server --port 8081 --web-ui http://localhost:8233
    python -m subchange.app.codec_server --new-key k2      # print a fresh PAYLOAD_KEYS entry

Protocol (docs.temporal.io, "codec server"): POST /encode and /decode with a JSON `Payloads`
body. Two ways to present the token:

- the `temporal` CLI sends it as a header: `--codec-auth "Bearer <token>"`;
- a browser signs in once at the server's own page (GET /), which sets a signed, HttpOnly,
  SameSite=Strict session cookie; the Web UI sends it along when "Include cross-origin
  credentials" is on (TEMPORAL_CODEC_INCLUDE_CREDENTIALS=true for the temporalio/ui image).
  CORS admits only the Web UI's origin.
"""

from __future__ import annotations

import argparse
import hmac
import html
import sys

from aiohttp import hdrs, web
from google.protobuf import json_format
from itsdangerous import BadSignature, TimestampSigner
from temporalio.api.common.v1 import Payloads

from subchange.adapters.codec import EncryptionCodec
from subchange.payload_keys import new_key_setting, parse_keys
from subchange.settings import ConfigurationError, get_settings

COOKIE = "subchange_codec_session"
SESSION_SECONDS = 8 * 3600  # one working day; changing the token ends every session


def build_app(codec: EncryptionCodec, *, token: str, web_ui: str | None) -> web.Application:
    if not token:
        raise ValueError("the codec server needs a token: an empty one would open to anyone")
    # The salt is part of every session cookie: changing it signs every operator out.
    signer = TimestampSigner(token, salt="subchange.codec_server.session")

    def cors(request: web.Request, response: web.StreamResponse) -> web.StreamResponse:
        if web_ui and request.headers.get(hdrs.ORIGIN) == web_ui:
            response.headers[hdrs.ACCESS_CONTROL_ALLOW_ORIGIN] = web_ui
            response.headers[hdrs.ACCESS_CONTROL_ALLOW_METHODS] = "POST"
            response.headers[hdrs.ACCESS_CONTROL_ALLOW_HEADERS] = (
                "content-type,x-namespace,authorization")
            response.headers[hdrs.ACCESS_CONTROL_ALLOW_CREDENTIALS] = "true"
        return response

    def signed_in(request: web.Request) -> bool:
        try:
            signer.unsign(request.cookies.get(COOKIE, ""), max_age=SESSION_SECONDS)
        except BadSignature:  # also a missing, tampered or expired cookie
            return False
        return True

    def authorised(request: web.Request) -> bool:
        supplied = request.headers.get(hdrs.AUTHORIZATION, "").removeprefix("Bearer ")
        # Bytes, so a token with non-ASCII characters is refused (401), not a crash (500).
        given = supplied.encode("utf-8", "surrogateescape")
        return (bool(supplied) and hmac.compare_digest(given, token.encode())) or signed_in(request)

    async def options(request: web.Request) -> web.StreamResponse:
        return cors(request, web.Response())

    def handler(encode: bool):
        async def handle(request: web.Request) -> web.StreamResponse:
            if not authorised(request):
                return cors(request, web.Response(status=401, text="a valid token is needed"))
            try:
                payloads = json_format.Parse(await request.read(), Payloads())
            except (json_format.ParseError, UnicodeDecodeError) as error:
                return cors(request, web.Response(status=400, text=f"not Payloads JSON: {error}"))
            method = codec.encode if encode else codec.decode
            try:
                result = Payloads(payloads=await method(payloads.payloads))
            except ValueError as error:
                return cors(request, web.Response(status=400, text=str(error)))
            return cors(request, web.json_response(text=json_format.MessageToJson(result)))
        return handle

    async def page(request: web.Request) -> web.Response:
        return sign_in_page(signed_in(request), web_ui)

    async def login(request: web.Request) -> web.StreamResponse:
        supplied = str((await request.post()).get("token", ""))
        if not hmac.compare_digest(supplied.encode("utf-8", "surrogateescape"),
                                                      token.encode()):
            return sign_in_page(False, web_ui, status=401, problem="That token is not valid.")
        response = web.Response(status=303, headers={hdrs.LOCATION: web_ui or "/"})
        response.set_cookie(COOKIE, signer.sign(b"operator").decode(), max_age=SESSION_SECONDS,
                            httponly=True, samesite="Strict", secure=request.secure, path="/")
        return response

    async def logout(request: web.Request) -> web.StreamResponse:
        response = web.Response(status=303, headers={hdrs.LOCATION: "/"})
        response.del_cookie(COOKIE, path="/")
        return response

    async def healthz(_: web.Request) -> web.Response:
        # For the orchestrator: serving, with its keys loaded (it reaches nothing else).
        return web.json_response({"codec": True})

    app = web.Application()
    app.add_routes([web.get("/healthz", healthz),
                    web.post("/encode", handler(True)), web.post("/decode", handler(False)),
                    web.options("/encode", options), web.options("/decode", options),
                    web.get("/", page), web.post("/login", login), web.post("/logout", logout)])
    return app


def sign_in_page(signed_in: bool, web_ui: str | None, *, status: int = 200,
                 problem: str = "") -> web.Response:
    back = (f'<p><a href="{html.escape(web_ui)}">Back to the Temporal Web UI</a></p>'
            if web_ui else "")
    if signed_in:
        body = ("<p>Signed in: the Web UI can show decrypted payloads in this browser for the "
                f"next {SESSION_SECONDS // 3600} hours.</p>{back}"
                '<form method="post" action="/logout"><button>Sign out</button></form>')
    else:
        body = (f'<p role="alert">{html.escape(problem)}</p>' if problem else "") + (
            '<form method="post" action="/login"><label>Codec server token '
            '<input type="password" name="token" autocomplete="off" autofocus></label> '
            "<button>Sign in</button></form>"
            "<p>In the Web UI, turn on <em>Include cross-origin credentials</em> under "
            "Codec Server once per browser.</p>")
    return web.Response(status=status, content_type="text/html", text=(
        "<!doctype html><html><head><meta charset=utf-8><title>subchange codec server</title>"
        "</head><body style='font-family:sans-serif;max-width:40em;margin:3em auto'>"
        f"<h1>subchange codec server</h1>{body}</body></html>"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m subchange.app.codec_server",
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
                host=args.host, port=args.port, print=None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
