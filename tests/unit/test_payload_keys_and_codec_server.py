"""The keys that seal payloads and the codec server that opens them: rotation keeps old payloads
readable and refuses unknown keys, a bad PAYLOAD_KEYS entry is named, the codec server opens
payloads only for the token holder (a header for the CLI, a signed session cookie for the Web
UI), and the embedded stack keeps its key between runs. That the history itself holds no
plaintext is tests/workflow/test_history_holds_no_plaintext.py."""

from __future__ import annotations

import time

import pytest
from aiohttp.test_utils import TestClient, TestServer
from google.protobuf import json_format
from temporalio.api.common.v1 import Payload, Payloads

from subchange.adapters.codec import EncryptionCodec
from subchange.app.codec_server import COOKIE, SESSION_SECONDS, build_app
from subchange.dev.devstack import stack_secrets
from subchange.payload_keys import new_key_setting, parse_keys
from subchange.settings import Settings

KEYS = new_key_setting("k1")


async def test_rotation_opens_old_payloads_and_refuses_unknown_keys():
    old_entry, new_entry = new_key_setting("2025"), new_key_setting("2026")
    [sealed] = await EncryptionCodec(parse_keys(old_entry)).encode(
        [Payload(metadata={"encoding": b"json/plain"}, data=b'"admin@x.example"')])
    assert b"admin@x.example" not in sealed.data

    rotated = EncryptionCodec(parse_keys(f"{new_entry},{old_entry}"))
    [opened] = await rotated.decode([sealed])
    assert opened.data == b'"admin@x.example"'
    [resealed] = await rotated.encode([opened])
    assert resealed.metadata["encryption-key-id"] == b"2026"
    with pytest.raises(ValueError, match="unknown key id"):
        await EncryptionCodec(parse_keys(new_key_setting("other"))).decode([sealed])


@pytest.mark.parametrize(("setting", "problem"), [
    ("k1", "KEY_ID:BASE64_KEY"), ("k1:not-base64!", "not base64"), ("k1:AAAA", "32 bytes")])
def test_bad_keys_are_named(setting, problem):
    with pytest.raises(ValueError, match=problem):
        parse_keys(setting)


async def test_the_codec_server_opens_payloads_for_the_token_holder_only():
    codec = EncryptionCodec(parse_keys(KEYS))
    sealed = Payloads(payloads=await codec.encode(
        [Payload(metadata={"encoding": b"json/plain"}, data=b'"admin@x.example"')]))
    body = json_format.MessageToJson(sealed)
    app = build_app(codec, token="s3cret", web_ui="http://localhost:8233")
    async with TestClient(TestServer(app)) as http:
        health = await http.get("/healthz")  # for the orchestrator: no token, no payload
        assert health.status == 200 and await health.json() == {"codec": True}
        refused = await http.post("/decode", data=body)
        assert refused.status == 401
        opened = await http.post("/decode", data=body, headers={
            "Authorization": "Bearer s3cret", "Origin": "http://localhost:8233"})
        assert opened.status == 200
        assert opened.headers["Access-Control-Allow-Origin"] == "http://localhost:8233"
        decoded = json_format.Parse(await opened.text(), Payloads())
        assert decoded.payloads[0].data == b'"admin@x.example"'


async def sealed_body(codec: EncryptionCodec, text: bytes) -> str:
    sealed = Payloads(payloads=await codec.encode(
        [Payload(metadata={"encoding": b"json/plain"}, data=text)]))
    return json_format.MessageToJson(sealed)


async def test_a_browser_signs_in_once_and_the_web_ui_decodes_with_its_cookie(monkeypatch):
    """The Web UI cannot send a header of ours: the operator signs in at the codec server and
    the UI's requests carry the session cookie ("Include cross-origin credentials")."""
    codec = EncryptionCodec(parse_keys(KEYS))
    body = await sealed_body(codec, b'"billing@x.example"')
    ui = {"Origin": "http://localhost:8233"}
    app = build_app(codec, token="s3cret", web_ui="http://localhost:8233")
    async with TestClient(TestServer(app)) as http:
        page = await http.get("/")
        assert 'name="token"' in await page.text()

        wrong = await http.post("/login", data={"token": "guess"}, allow_redirects=False)
        assert wrong.status == 401 and "not valid" in await wrong.text()
        assert COOKIE not in wrong.cookies
        assert (await http.post("/decode", data=body, headers=ui)).status == 401

        signed_in = await http.post("/login", data={"token": "s3cret"}, allow_redirects=False)
        assert signed_in.status == 303
        assert signed_in.headers["Location"] == "http://localhost:8233"
        cookie = signed_in.cookies[COOKIE]
        assert cookie["httponly"] and cookie["samesite"] == "Strict"
        assert "s3cret" not in cookie.value  # a signed session, not the token itself

        opened = await http.post("/decode", data=body, headers=ui)
        assert opened.status == 200
        assert opened.headers["Access-Control-Allow-Credentials"] == "true"
        assert json_format.Parse(await opened.text(), Payloads()).payloads[0].data == (
            b'"billing@x.example"')
        assert "Signed in" in await (await http.get("/")).text()

        await http.post("/logout", allow_redirects=False)
        assert (await http.post("/decode", data=body, headers=ui)).status == 401


def test_the_codec_server_refuses_to_run_without_a_token():
    """An empty token would sign cookies with an empty key and match an empty header."""
    with pytest.raises(ValueError, match="needs a token"):
        build_app(EncryptionCodec(parse_keys(KEYS)), token="", web_ui=None)


async def test_a_tampered_or_expired_session_is_refused(monkeypatch):
    codec = EncryptionCodec(parse_keys(KEYS))
    body = await sealed_body(codec, b'"billing@x.example"')
    app = build_app(codec, token="s3cret", web_ui=None)
    async with TestClient(TestServer(app)) as http:
        signed_in = await http.post("/login", data={"token": "s3cret"}, allow_redirects=False)
        value = signed_in.cookies[COOKIE].value
        http.session.cookie_jar.clear()

        tampered = value[:-2] + ("AA" if not value.endswith("AA") else "BB")
        refused = await http.post("/decode", data=body, headers={"Cookie": f"{COOKIE}={tampered}"})
        assert refused.status == 401

        # The same cookie a working day later.
        later = time.time() + SESSION_SECONDS + 60
        monkeypatch.setattr("itsdangerous.timed.time.time", lambda: later)
        expired = await http.post("/decode", data=body, headers={"Cookie": f"{COOKIE}={value}"})
        assert expired.status == 401

    # A new token ends every session signed with the old one.
    async with TestClient(TestServer(build_app(codec, token="rotated", web_ui=None))) as http:
        monkeypatch.undo()
        stale = await http.post("/decode", data=body, headers={"Cookie": f"{COOKIE}={value}"})
        assert stale.status == 401


def test_the_embedded_stack_keeps_its_key_between_runs(tmp_path):
    """`make demo` a second time must open the histories the first run sealed."""
    env_file = tmp_path / "var" / "devstack.env"
    first = stack_secrets(env_file)
    assert env_file.stat().st_mode & 0o777 == 0o600
    parse_keys(first["PAYLOAD_KEYS"])
    assert stack_secrets(env_file) == first
    settings = Settings(_env_file=(env_file,))
    assert (settings.payload_keys, settings.codec_server_token) == (
        first["PAYLOAD_KEYS"], first["CODEC_SERVER_TOKEN"])


async def test_the_codec_server_answers_bad_requests_with_4xx_not_500():
    codec = EncryptionCodec(parse_keys(KEYS))
    body = await sealed_body(codec, b'"admin@x.example"')
    tampered = json_format.Parse(body, Payloads())
    tampered.payloads[0].data = tampered.payloads[0].data[:-1] + bytes(
        [tampered.payloads[0].data[-1] ^ 1])
    other_key = EncryptionCodec(parse_keys(new_key_setting("k1")))  # same id, another key
    app = build_app(codec, token="s3cret", web_ui=None)
    auth = {"Authorization": "Bearer s3cret"}
    async with TestClient(TestServer(app)) as http:
        non_ascii = await http.post("/decode", data=body,
                                    headers={"Authorization": "Bearer s3crét"})
        assert non_ascii.status == 401
        bad_tag = await http.post("/decode", data=json_format.MessageToJson(tampered),
                                  headers=auth)
        assert bad_tag.status == 400 and "could not be opened" in await bad_tag.text()
        wrong_key = await http.post("/decode", data=await sealed_body(other_key, b'"x"'),
                                    headers=auth)
        assert wrong_key.status == 400
        garbage = await http.post("/decode", data="{not json", headers=auth)
        assert garbage.status == 400 and "Payloads" in await garbage.text()


def test_settings_never_print_the_gateway_key_or_the_database_password():
    settings = Settings(_env_file=None, stripe_api_key="sk_test_supersecret",
                        database_url="postgresql+psycopg://app:hunter2@db/subchange")
    shown = repr(settings) + str(settings)
    assert "supersecret" not in shown and "hunter2" not in shown
