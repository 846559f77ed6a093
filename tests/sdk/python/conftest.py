"""Shared helpers for the official-SDK tests: start `idverdict emulate` on a free
port with a fresh data dir, and a webhook receiver built on the SDK's own
`Webhook.construct_event`."""

import http.server
import json
import os
import subprocess
import tempfile
import threading
import time
import urllib.parse
import urllib.request

import pytest
import stripe

BIN = os.environ.get("IDVERDICT_BIN", "target/debug/idverdict")
API_KEY = "sk_test_python_sdk_judge"
# A restricted key: the only kind that may read sensitive verification results and images.
RESTRICTED_KEY = "rk_test_python_sdk_judge"


class Emulator:
    def __init__(self, proc, base, data_dir):
        self.proc = proc
        self.base = base
        self.data_dir = data_dir

    def client(self, key=API_KEY):
        return stripe.StripeClient(key, base_addresses={"api": self.base}, max_network_retries=0)

    def emulator_post(self, path, **form):
        """Emulator-only endpoints (`/_emulator/...`) are plain HTTP, no SDK involved."""
        data = urllib.parse.urlencode(form).encode()
        req = urllib.request.Request(self.base + path, data=data, method="POST")
        with urllib.request.urlopen(req, timeout=10) as res:
            return json.loads(res.read())

    def delivery_log(self):
        with urllib.request.urlopen(self.base + "/_emulator/deliveries", timeout=10) as res:
            return json.loads(res.read())


def start_emulator(data_dir, *extra):
    args = [BIN, "emulate", "--listen", "127.0.0.1:0", "--data", data_dir, "--time-scale", "0.001", "--processing-delay-ms", "100", *extra]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = proc.stdout.readline()
    assert line.startswith("emulator listening on http://"), f"unexpected first line: {line!r}"
    return Emulator(proc, line.split()[-1], data_dir)


@pytest.fixture
def emulator():
    with tempfile.TemporaryDirectory() as data_dir:
        emu = start_emulator(data_dir)
        try:
            yield emu
        finally:
            emu.proc.terminate()
            try:
                emu.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                emu.proc.kill()
                emu.proc.wait()


class Receiver:
    """Accepts a webhook only if `stripe.Webhook.construct_event` accepts it
    with every secret in `secrets` (several during a secret roll); otherwise
    answers 400 and records the failure."""

    def __init__(self):
        self.secrets = []
        self.events = []
        self.failures = []
        self.signature_headers = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length", "0"))
                payload = self.rfile.read(length)
                header = self.headers.get("Stripe-Signature")
                status = 200
                try:
                    with receiver.lock:
                        secrets = list(receiver.secrets)
                    event = None
                    for secret in secrets:
                        event = stripe.Webhook.construct_event(payload, header, secret)
                    with receiver.lock:
                        receiver.events.append(event)
                        receiver.signature_headers.append(header)
                except Exception as e:  # the SDK's verdict, recorded for the test to assert on
                    status = 400
                    with receiver.lock:
                        receiver.failures.append(repr(e))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/webhooks"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def wait_for(self, predicate, timeout=15):
        deadline = time.time() + timeout
        while time.time() < deadline:
            with self.lock:
                events = list(self.events)
            if predicate(events):
                return events
            time.sleep(0.05)
        with self.lock:
            raise AssertionError(f"receiver condition not met; got {[e.type for e in self.events]}, failures {self.failures}")

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    r = Receiver()
    try:
        yield r
    finally:
        r.close()


def wait_until(fn, timeout=15):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = fn()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("condition not met in time")
