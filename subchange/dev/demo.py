"""The demo: the source documents' cases, run through `starter.py` against the embedded stack.

Each case prints the command it runs, the steps as they happen and a one-line outcome, so the
output doubles as a tour of the command line. One change is left waiting for support on purpose,
so the Web UI has something to show under `ChangeStep="awaiting_support"`.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import json
import mailbox
import shlex
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from typing import Any, Self
from zoneinfo import ZoneInfo

import httpx
from dateutil.relativedelta import relativedelta

from subchange.app.client import connect
from subchange.dev.devstack import Stack
from subchange.settings import Settings

GOOD_CARD, DECLINING_CARD = "4242424242424242", "4000000000000341"


SUPPORT, SALES = "support@subchange.example", "sales@subchange.example"
TOKYO, NEW_YORK = "Asia/Tokyo", "America/New_York"


def demo_fixture(today: datetime | None = None) -> dict[str, Any]:
    """Organisations of the source documents, with a billing period that contains today on
    their own calendar (the Japanese companies are in Tokyo, Globex in New York)."""
    today = today or datetime.now(UTC)

    def period_in(time_zone: str) -> dict[str, Any]:
        start = today.astimezone(ZoneInfo(time_zone)).date().replace(day=1)
        return {"billing_period": "monthly", "period_start": str(start),
                "period_end": str(start + relativedelta(months=1))}

    period = period_in(TOKYO)

    def sub(product: str, plan: str, seats: int, **extra: Any) -> dict[str, Any]:
        return {"product": product, "plan": plan, "seats": seats, "payment_method": "online",
                "card": GOOD_CARD, "unit_price": None,
                "pricing_model": "per_agent" if product == "desk" else "all_employee",
                **period, **extra}

    def staff(domain: str, count: int, products: list[str]) -> list[dict[str, Any]]:
        return [{"email": f"staff{n:02d}@{domain}", "products": products}
                for n in range(1, count + 1)]

    return {"orgs": [
        # Zoho One, all-employee pricing: 35 → 32 (30 people work there, so 32 is fine, 28 isn't).
        {"id": "acme", "time_zone": TOKYO, "name": "Acme KK", "currency": "JPY",
         "billing_email": "billing@acme.example",
         "users": [{"email": "admin@acme.example", "role": "admin", "products": ["one"]},
                   *staff("acme.example", 29, ["one"])],
         "subscriptions": [sub("one", "enterprise", 35)]},
        # Zoho One, flexible user pricing: 30 → 35, charged to the card.
        {"id": "kaede", "time_zone": TOKYO, "name": "Kaede Design KK", "currency": "JPY",
         "billing_email": "billing@kaede.example",
         "users": [{"email": "admin@kaede.example", "role": "admin", "products": ["one"]},
                   *staff("kaede.example", 20, ["one"])],
         "subscriptions": [sub("one", "enterprise", 30, pricing_model="flexible_user")]},
        # Zoho Desk downgrades: only the primary contact (or a super admin) may change the plan.
        {"id": "sakura", "time_zone": TOKYO, "name": "Sakura Support KK", "currency": "JPY",
         "billing_email": "billing@sakura.example",
         "users": [{"email": "owner@sakura.example", "role": "admin", "primary_contact": True,
                    "products": ["desk"]},
                   {"email": "it@sakura.example", "role": "admin", "products": ["desk"]},
                   *staff("sakura.example", 4, ["desk"])],
         "subscriptions": [sub("desk", "enterprise", 8)]},
        # Pays by bank transfer: every change goes to sales (the note at the top of the document).
        # A Japanese company that reads its invoices in English (locale en): still taxed.
        {"id": "minato", "time_zone": TOKYO, "name": "Minato Trading KK", "currency": "JPY",
         "locale": "en", "billing_email": "billing@minato.example",
         "users": [{"email": "admin@minato.example", "role": "admin", "products": ["one"]},
                   *staff("minato.example", 9, ["one"])],
         "subscriptions": [sub("one", "enterprise", 10, payment_method="offline", card=None)]},
        # A USD customer whose card is declined at charge time: the change waits for payment
        # until the card is replaced (SPEC section 11).
        {"id": "globex", "time_zone": NEW_YORK, "name": "Globex Inc", "currency": "USD",
         "country": "US",
         "billing_email": "billing@globex.example",
         "users": [{"email": "admin@globex.example", "role": "admin", "products": ["one"]}],
         "subscriptions": [sub("one", "enterprise", 5, pricing_model="flexible_user",
                               card=DECLINING_CARD, **period_in(NEW_YORK))]},
    ], "staff": [  # the vendor's people (SPEC section 9): who may retry, cancel and decide
        {"email": SUPPORT, "roles": ["support"]},
        {"email": SALES, "roles": ["sales"]},
    ]}


class Receiver:
    """A backend's webhook endpoint for the demo: verifies each delivery with the
    standardwebhooks package and keeps what it got."""

    def __init__(self) -> None:
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        from standardwebhooks import Webhook, WebhookVerificationError

        self.secret = ""
        self.got: list[tuple[str, str | None, bool]] = []  # (type, workflow id, verified)
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                try:
                    Webhook(receiver.secret).verify(body, dict(self.headers))
                    verified = True
                except WebhookVerificationError:
                    verified = False
                event = json.loads(body)
                receiver.got.append((event["type"], event["data"].get("workflow_id"), verified))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *_: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/subchange"

    def __enter__(self) -> Self:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *_: object) -> None:
        self.server.shutdown()

    def wait_for(self, workflow_id: str, last: str, timeout: float = 20
                 ) -> list[tuple[str, bool]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not any(
                t == last and w == workflow_id for t, w, _ in self.got):
            time.sleep(0.2)
        return [(t, v) for t, w, v in self.got if w == workflow_id]


class Demo:
    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.run_id = datetime.now(UTC).strftime("%H%M%S")
        self.failures: list[str] = []

    def starter(self, *args: str, expect: int = 0) -> dict[str, Any]:
        """Run `python starter.py ARGS` as a user would; echo the command and its progress."""
        print(f"\n$ python starter.py {shlex.join(args)}", flush=True)
        process = subprocess.run([sys.executable, "starter.py", *args], check=False,
                                 cwd=self.stack.root,
                                 env=self.stack.process_env, capture_output=True, text=True,
                                 timeout=120)
        for line in process.stderr.splitlines():
            print(f"  {line}", flush=True)
        if process.returncode != expect:
            self.failures.append(f"`starter.py {shlex.join(args)}` exited {process.returncode}, "
                                 f"expected {expect}")
            print(f"  !! exit code {process.returncode} (expected {expect})", flush=True)
        try:
            return json.loads(process.stdout) if process.stdout.strip() else {}
        except json.JSONDecodeError:
            print(process.stdout)
            return {}

    def say(self, text: str) -> None:
        print(f"\n=== {text}", flush=True)

    def outcome(self, result: dict[str, Any]) -> None:
        if "status" not in result:
            return
        parts = [f"→ {result['status']}"]
        if result.get("reason"):
            parts.append(f"({result['reason_code']}: {result['reason']})")
        quote, payment = result.get("quote") or {}, result.get("payment") or {}
        if quote:
            tax = quote.get("tax") or {}
            parts.append(f"amount {quote['amount']} {quote['currency']}, due "
                         f"{quote['amount_due']} + tax {tax.get('tax', 0)} = "
                         f"{tax.get('total', quote['amount_due'])}, refundable "
                         f"{tax.get('refundable_total', quote['refundable_amount'])}")
        if payment.get("charge_id"):
            parts.append(f"charged {payment['amount']} ({payment['charge_id']})")
        if payment.get("sales_case"):
            parts.append(f"sales case {payment['sales_case']}")
        if result.get("invoice"):
            parts.append(f"invoice {result['invoice']['number']} → "
                         f"{result['invoice']['emailed_to']}")
        if result.get("refund_ticket"):
            ticket = result["refund_ticket"]
            parts.append(f"refund ticket {ticket['id']} for {ticket['amount']} "
                         f"{ticket['currency']}")
        if result.get("subscription"):
            sub = result["subscription"]
            off = sub.get("disabled_features") or []
            parts.append(f"now {sub['plan']} × {sub['seats']}"
                         + (f", switched off: {', '.join(off)}" if off else ""))
        print("  " + "; ".join(parts), flush=True)

    def change(self, org: str, product: str, by: str, *target: str, expect: int = 0,
               request_id: str | None = None) -> dict[str, Any]:
        args = ["change", "--org", org, "--product", product, "--by", by, *target, "--wait"]
        if request_id:
            args += ["--request-id", request_id]
        result = self.starter(*args, expect=expect)
        self.outcome(result)
        return result

    def run(self) -> int:
        fixture = self.stack.var / "demo-fixture.json"
        fixture.write_text(json.dumps(demo_fixture(), indent=2), encoding="utf-8")
        self.say("Load the demo organisations (periods run through this month)")
        self.starter("load", str(fixture))

        self.say("Zoho One, all-employee pricing: 35 → 32 licences (a decrease moves no money)")
        self.starter("quote", "--org", "acme", "--product", "one", "--by", "admin@acme.example",
                     "--seats", "32")
        self.change("acme", "one", "admin@acme.example", "--seats", "32")

        self.say("Zoho One, flexible user pricing: 30 → 35 licences, prorated and charged")
        request_id = f"demo-{self.run_id}-kaede"
        charged = self.change("kaede", "one", "admin@kaede.example", "--seats", "35",
                              request_id=request_id)
        self.show_invoice(charged)
        self.say("The same request sent again (a backend retrying): one change, one charge")
        self.change("kaede", "one", "admin@kaede.example", "--seats", "35",
                    request_id=request_id)

        self.over_http()

        self.say("A reduction below the active users is rejected (30 people still active)")
        self.change("acme", "one", "admin@acme.example", "--seats", "28", expect=1)

        self.say("Zoho Desk: only the primary contact may downgrade")
        self.change("sakura", "desk", "it@sakura.example", "--plan", "professional", expect=1)
        self.say("Zoho Desk: enterprise → standard is not a direct move")
        self.change("sakura", "desk", "owner@sakura.example", "--plan", "standard", expect=1)
        self.say("Zoho Desk: enterprise → professional with a refund request (payments ticket)")
        self.change("sakura", "desk", "owner@sakura.example", "--plan", "professional",
                    "--refund")

        self.at_the_period_end()

        self.say("Bank-transfer payer: the change is routed to sales and waits for a decision")
        waiting = self.change("minato", "one", "admin@minato.example", "--seats", "12",
                              expect=3)
        if waiting.get("workflow_id"):
            self.say("The requester may not approve their own change; sales may")
            self.starter("sales-decision", waiting["workflow_id"], "--approve", "--by",
                         "admin@minato.example", expect=1)
            self.starter("sales-decision", waiting["workflow_id"], "--approve", "--by",
                         SALES, "--note", "PO 4711 received")
            approved = self.wait_for_result(waiting["workflow_id"])
            self.outcome(approved)
            self.show_invoice(approved)

        self.say("A card declined at charge time: the change waits for payment (retried in "
                 "1, 2, 2, 2 days; the billing contact is told once)")
        for workflow_id in self.still_waiting("globex"):
            print(f"  (cancelling {workflow_id}, left waiting by an earlier demo run)")
            self.starter("cancel", workflow_id, "--by", SUPPORT)
        declined = self.change("globex", "one", "admin@globex.example", "--seats", "8",
                               expect=3)
        if declined.get("workflow_id"):
            self.say("The customer replaces the card (a fixture with a new card): the change "
                     "is told and tries again at once")
            new_card = self.stack.var / "demo-new-card.json"
            document = demo_fixture()
            document["orgs"] = [self.replace_card(org) for org in document["orgs"]
                                if org["id"] == "globex"]
            new_card.write_text(json.dumps(document, indent=2), encoding="utf-8")
            self.starter("load", str(new_card))
            recovered = self.wait_for_result(declined["workflow_id"])
            self.outcome(recovered)
            self.show_invoice(recovered)
        self.finale()
        return 1 if self.failures else 0

    def at_the_period_end(self) -> None:
        """SPEC section 10: a downgrade that takes effect when the period ends, found by its
        ChangeStep, then fired early with the staging-only command (the period end is weeks
        away) and confirmed by a zero-amount email that names the date."""
        for stale in self.still_waiting("sakura", 'AND ChangeStep="scheduled"'):
            print(f"  (cancelling {stale}, left scheduled by an earlier demo run)")
            self.starter("cancel", stale, "--by", SUPPORT)
        self.say("Zoho Desk: professional → standard at the end of the period (nothing charged "
                 "now)")
        scheduled = self.change("sakura", "desk", "owner@sakura.example", "--plan", "standard",
                                "--at", "period-end", expect=4)
        workflow_id = scheduled.get("workflow_id")
        if not workflow_id:
            return
        for _ in range(20):  # the list follows the workflow by a moment
            listed = self.still_waiting("sakura", 'AND ChangeStep="scheduled"')
            if workflow_id in listed:
                break
            time.sleep(0.25)
        print(f'\n  Web UI filter OrgId="sakura" AND ChangeStep="scheduled": {listed}',
              flush=True)
        if workflow_id not in listed:
            self.failures.append(f"{workflow_id} is not listed by ChangeStep=\"scheduled\"")
        self.say("Staging only: fire it now instead of at the period end (ALLOW_RESCHEDULE)")
        self.starter("reschedule", workflow_id, "--at", "now", "--by", SUPPORT)
        fired = self.wait_for_result(workflow_id)
        self.outcome(fired)
        if fired.get("status") != "completed":
            self.failures.append(f"{workflow_id} did not complete when fired: {fired}")
        self.show_invoice(fired)

    def over_http(self) -> None:
        """What a backend in any language does (SPEC sections 12 and 13): its endpoint added by
        support, a change started with an Idempotency-Key and sent again, followed by its
        Location, the invoice's PDF fetched, the change's events received and verified."""
        self.say("A backend over HTTP: POST /v1/changes with an Idempotency-Key (sent twice)")
        key = f"demo-{self.run_id}-http"
        body = {"org_id": "kaede", "product": "one", "requested_by": "admin@kaede.example",
                "change": {"kind": "seats", "seats": 38}}
        headers = {"Authorization": f"Bearer {self.stack.api_keys['backend']}"}
        support = {"Authorization": f"Bearer {self.stack.api_keys['support']}"}
        with httpx.Client(base_url=self.stack.api, headers=headers, timeout=30) as http, \
                Receiver() as receiver:
            print(f"\n$ curl -X POST {self.stack.api}/v1/webhook-endpoints -H 'Authorization: "
                  f"Bearer $SUPPORT_KEY' -d '{{\"url\": \"{receiver.url}\"}}'", flush=True)
            endpoint = http.post("/v1/webhook-endpoints", json={"url": receiver.url},
                                 headers=support)
            print(f"  {endpoint.status_code} {endpoint.json().get('id')} (a receiver of this "
                  "demo that verifies each delivery's signature)", flush=True)
            receiver.secret = endpoint.json().get("secret", "")
            try:
                self._change_over_http(http, key, body, receiver)
            finally:
                http.delete(f"/v1/webhook-endpoints/{endpoint.json().get('id')}",
                            headers=support)

    def _change_over_http(self, http: httpx.Client, key: str, body: dict[str, Any],
                          receiver: Receiver) -> None:
        for _ in range(2):
            print(f"\n$ curl -X POST {self.stack.api}/v1/changes -H 'Authorization: Bearer "
                  f"$KEY' -H 'Idempotency-Key: {key}' -d '{json.dumps(body)}'", flush=True)
            answer = http.post("/v1/changes", json=body, headers={"Idempotency-Key": key})
            print(f"  {answer.status_code}, Location: {answer.headers.get('location')}"
                  f"  {answer.text}", flush=True)
            if answer.status_code not in (200, 202):
                self.failures.append(f"POST /v1/changes answered {answer.status_code}")
                return
        location = answer.headers["location"]
        print(f"\n$ curl {self.stack.api}{location} -H 'Authorization: Bearer $KEY'")
        deadline, view = time.monotonic() + 30, {}
        while time.monotonic() < deadline:
            view = http.get(location).json()
            if view.get("result"):
                break
            time.sleep(0.3)
        for record in view.get("history", []):
            print(f"  {record['step']:<24} {record['outcome']}", flush=True)
        result = view.get("result") or {}
        self.outcome(result)
        if result.get("status") != "completed":
            self.failures.append(f"{location} did not complete over HTTP: {view}")
            return
        number = result["invoice"]["number"]
        pdf = http.get(f"/v1/invoices/{number}")
        saved = self.stack.var / "invoices" / f"{number}-from-api.pdf"
        saved.parent.mkdir(exist_ok=True)
        saved.write_bytes(pdf.content)
        print(f"\n$ curl {self.stack.api}/v1/invoices/{number} -H 'Authorization: Bearer "
              f"$KEY'\n  {pdf.status_code} {pdf.headers.get('content-type')}, "
              f"{len(pdf.content)} bytes → {saved}", flush=True)
        events = receiver.wait_for(result["workflow_id"], "change.completed")
        print("\n  the endpoint received, in order:", flush=True)
        for event_type, verified in events:
            print(f"    {event_type:<20} signature {'verified' if verified else 'BAD'}",
                  flush=True)
        if not events or not all(v for _, v in events):
            self.failures.append(f"the webhook endpoint got {events}")

    def show_invoice(self, result: dict[str, Any]) -> None:
        """The invoice email of a change as its billing contact reads it (a qualified invoice in
        Japanese for a Japanese company), and its PDF saved beside the Maildir."""
        number = (result.get("invoice") or {}).get("number")
        if not number:
            return
        for message in mailbox.Maildir(self.stack.maildir, create=False):
            if f"<{number}." not in (message["Message-ID"] or ""):
                continue
            parsed = email.message_from_bytes(message.as_bytes(), policy=email.policy.default)
            self.say(f"The invoice {result['invoice']['emailed_to']} received")
            body = parsed.get_body(("plain",))
            print("  " + (body.get_content() if body else "").replace("\n", "\n  "))
            for attachment in parsed.iter_attachments():
                name = attachment.get_filename() or f"{number}.pdf"  # it is named so
                pdf = self.stack.var / "invoices" / name
                pdf.parent.mkdir(exist_ok=True)
                pdf.write_bytes(attachment.get_content())
                print(f"  PDF: {pdf}", flush=True)
            return
        self.failures.append(f"no email of invoice {number} in {self.stack.maildir}")

    @staticmethod
    def replace_card(org: dict[str, Any]) -> dict[str, Any]:
        return {**org, "subscriptions": [{**sub, "card": GOOD_CARD}
                                         for sub in org["subscriptions"]]}

    def still_waiting(self, org: str, also: str = "") -> list[str]:
        """Running changes of an org (`also`: more of the filter), found the way an operator
        filters the Web UI list."""
        async def running() -> list[str]:
            client = await connect(Settings(temporal_address=self.stack.env["TEMPORAL_ADDRESS"],
                                            payload_keys=self.stack.env["PAYLOAD_KEYS"]))
            query = (f'WorkflowType="SubscriptionChange" AND OrgId="{org}" '
                     f'AND ExecutionStatus="Running" {also}')
            return [w.id async for w in client.list_workflows(query)]

        return asyncio.run(running())

    def wait_for_result(self, workflow_id: str, timeout: float = 30) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        view: dict[str, Any] = {}
        while time.monotonic() < deadline:
            view = self.starter("status", workflow_id)
            if view.get("result"):
                return view["result"]
            time.sleep(0.5)
        self.failures.append(f"{workflow_id} did not finish within {timeout}s")
        return view

    def finale(self) -> None:
        ui = f"http://localhost:{self.stack.ui_port}"
        print(f"""
=== Where to look
  Temporal Web UI:  {ui}/namespaces/default/workflows
    every change is a SubscriptionChange workflow; filter with
    ChangeStep="awaiting_support" (changes waiting for a person),
    ChangeStep="awaiting_payment" (a declined card) or OrgId="acme"
  Decrypted payloads: sign in at {self.stack.codec_endpoint} with the token
    {self.stack.secrets.get("CODEC_SERVER_TOKEN", "")} (also in {self.stack.env_file}),
    then point the Web UI at it (README, "Watching changes in the Web UI")
  HTTP API:         {self.stack.api}/docs   (keys of each role printed above, kept in
    {self.stack.env_file})
  Emails (Maildir): {self.stack.maildir}/new/   (one file per invoice email)
  Logs:             {self.stack.var}/logs/""", flush=True)
        if self.failures:
            print("\nThe demo did not go as expected:\n  " + "\n  ".join(self.failures),
                  flush=True)


def run_demo(stack: Stack) -> int:
    return Demo(stack).run()


if __name__ == "__main__":  # pragma: no cover - run through `python -m subchange.dev demo`
    print("run the demo with: python -m subchange.dev demo", file=sys.stderr)
    sys.exit(2)
