"""The official Python SDK (PyPI `stripe`) as judge of idverdict's webhook signatures.

- Events signed with the SDK's own signing routine are accepted by `idverdict serve`.
- Events signed by `idverdict trigger` are accepted by the SDK's `Webhook.construct_event`.
"""

import http.server
import json
import os
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request

import stripe

BIN = os.environ.get("IDVERDICT_BIN", "target/debug/idverdict")
SECRET = "whsec_python_sdk_judge_secret"
TOKEN = "python-sdk-test-token-0123456789"


def start_serve(data_dir):
    env = dict(
        os.environ,
        STRIPE_WEBHOOK_SECRET=SECRET,
        IDVERDICT_API_TOKEN=TOKEN,
        IDVERDICT_LISTEN="127.0.0.1:0",
        IDVERDICT_DATA_DIR=data_dir,
    )
    env.pop("DATABASE_URL", None)
    proc = subprocess.Popen([BIN, "serve"], env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = proc.stdout.readline()
    assert line.startswith("webhook receiver listening on "), line
    return proc, line.split()[-1]


def post(url, body, header):
    req = urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": "application/json", "Stripe-Signature": header})
    try:
        with urllib.request.urlopen(req, timeout=30) as res:
            return res.status, json.loads(res.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def sdk_header(payload: str, secret: str, timestamp: int) -> str:
    # The SDK's own HMAC routine (the one construct_event uses to check), not ours.
    signature = stripe.WebhookSignature._compute_signature(f"{timestamp}.{payload}", secret)
    return f"t={timestamp},v1={signature}"


def identity_event(event_id, session_id, kind="verified"):
    return json.dumps(
        {
            "id": event_id,
            "object": "event",
            "api_version": "2026-07-29.dahlia",
            "created": int(time.time()),
            "data": {
                "object": {
                    "id": session_id,
                    "object": "identity.verification_session",
                    "client_reference_id": "py_user",
                    "created": int(time.time()) - 60,
                    "last_error": None,
                    "last_verification_report": "vr_1py",
                    "livemode": False,
                    "metadata": {},
                    "status": kind,
                    "type": "document",
                }
            },
            "livemode": False,
            "pending_webhooks": 1,
            "request": {"id": None, "idempotency_key": None},
            "type": f"identity.verification_session.{kind}",
        },
        indent=2,
    )


def test_serve_accepts_events_signed_by_the_python_sdk():
    with tempfile.TemporaryDirectory() as data_dir:
        proc, url = start_serve(data_dir)
        try:
            payload = identity_event("evt_1PySdkSigned", "vs_1PySdk")
            status, body = post(url, payload.encode(), sdk_header(payload, SECRET, int(time.time())))
            assert status == 200 and body["received"] is True, body
            # And the SDK's idea of a wrong signature is refused.
            status, body = post(url, payload.encode(), sdk_header(payload, "whsec_wrong", int(time.time())))
            assert status == 400 and body["error"]["code"] == "no_matching_signature", body
            # A stale timestamp (older than the 300 s tolerance the SDK also uses) is refused.
            status, body = post(url, payload.encode(), sdk_header(payload, SECRET, int(time.time()) - 400))
            assert status == 400 and body["error"]["code"] == "timestamp_too_old", body
        finally:
            proc.terminate()
            proc.wait(timeout=30)


class _Receiver(http.server.BaseHTTPRequestHandler):
    events = []
    errors = []

    def do_POST(self):
        payload = self.rfile.read(int(self.headers["Content-Length"]))
        try:
            event = stripe.Webhook.construct_event(payload, self.headers["Stripe-Signature"], SECRET)
            _Receiver.events.append(event)
            self.send_response(200)
        except Exception as e:  # noqa: BLE001 - any SDK failure is a test failure
            _Receiver.errors.append(repr(e))
            self.send_response(400)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_python_sdk_construct_event_accepts_what_idverdict_trigger_signs():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/webhook"
        for flow in ["verified", "failed:document_expired", "canceled"]:
            subprocess.run([BIN, "trigger", "--flow", flow, "--user", "py_user", "--url", url, "--secret", SECRET], check=True, capture_output=True)
        # Several secrets (a roll): the SDK verifies against either one.
        subprocess.run([BIN, "trigger", "created", "--url", url, "--secret", f"whsec_other_one,{SECRET}"], check=True, capture_output=True)
        assert _Receiver.errors == []
        types = [e["type"] for e in _Receiver.events]
        assert types.count("identity.verification_session.created") == 4
        assert "identity.verification_session.verified" in types
        failed = [e for e in _Receiver.events if e["type"] == "identity.verification_session.requires_input"]
        assert failed[0]["data"]["object"]["last_error"]["code"] == "document_expired"
    finally:
        server.shutdown()
