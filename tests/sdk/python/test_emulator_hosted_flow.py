"""The hosted-flow stand-in and the chaos switches, judged by the official SDK:
a tester submits the page behind a session's `url`, and every (duplicated,
reordered) delivery still passes `stripe.Webhook.construct_event`."""

import collections
import subprocess
import tempfile
import urllib.parse
import urllib.request

from conftest import start_emulator, wait_until


def submit(url, outcome):
    action, query = url.split("?", 1)
    token = urllib.parse.parse_qs(query)["token"][0]
    # The page itself must offer the outcome being picked.
    with urllib.request.urlopen(url, timeout=10) as res:
        assert f'value="{outcome}"' in res.read().decode()
    data = urllib.parse.urlencode({"token": token, "outcome": outcome}).encode()
    with urllib.request.urlopen(urllib.request.Request(action, data=data, method="POST"), timeout=10) as res:
        return res.status


def test_hosted_page_with_chaos(receiver):
    with tempfile.TemporaryDirectory() as data_dir:
        emu = start_emulator(data_dir, "--chaos-duplicate", "1", "--chaos-reorder", "0.5", "--chaos-reorder-window-ms", "300")
        try:
            client = emu.client()
            ep = client.v1.webhook_endpoints.create(params={"url": receiver.url, "enabled_events": ["*"]})
            receiver.secrets = [ep.secret]
            vs = client.v1.identity.verification_sessions
            s = vs.create(params={"type": "document"})
            assert submit(s.url, "under_supported_age") == 200
            failed = wait_until(lambda: (lambda x: x if x.status == "requires_input" and x.last_error else None)(vs.retrieve(s.id)))
            assert failed.last_error.code == "under_supported_age"
            assert submit(failed.url, "verified") == 200
            wait_until(lambda: vs.retrieve(s.id).status == "verified")

            # created, processing, requires_input, processing, verified: each delivered twice.
            events = receiver.wait_for(lambda evs: len(evs) >= 10)
            per_id = collections.Counter(e.id for e in events)
            assert len(per_id) == 5 and set(per_id.values()) == {2}, per_id
            assert collections.Counter(e.type for e in events)["identity.verification_session.processing"] == 4
            assert receiver.failures == []
        finally:
            emu.proc.terminate()
            try:
                emu.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                emu.proc.kill()
