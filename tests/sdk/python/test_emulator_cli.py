"""`idverdict endpoints create|list|delete` against the emulator, checked through the official SDK."""

import os
import subprocess

from conftest import API_KEY, BIN


def endpoints(emulator, *args):
    env = dict(os.environ, STRIPE_API_KEY=API_KEY)
    return subprocess.run([BIN, "endpoints", "--api-base", emulator.base, *args], env=env, capture_output=True, text=True, timeout=30)


def test_endpoints_cli_round_trip(emulator):
    created = endpoints(emulator, "create", "--url", "https://example.com/webhooks/stripe")
    assert created.returncode == 0, created.stderr
    ep_id = created.stdout.split()[0]
    assert ep_id.startswith("we_")
    assert "whsec_" in created.stdout

    client = emulator.client()
    ep = client.v1.webhook_endpoints.retrieve(ep_id)
    assert ep.url == "https://example.com/webhooks/stripe"
    assert "identity.verification_session.redacted" in ep.enabled_events
    assert "identity.verification_session.verified" in ep.enabled_events

    star = endpoints(emulator, "create", "--url", "https://example.com/all", "--events", "*", "--description", "all")
    assert star.returncode == 0, star.stderr
    listed = endpoints(emulator, "list")
    assert listed.returncode == 0
    assert [line.split()[0] for line in listed.stdout.splitlines()] == [star.stdout.split()[0], ep_id]

    deleted = endpoints(emulator, "delete", ep_id)
    assert deleted.returncode == 0 and ep_id in deleted.stdout
    assert [e.id for e in client.v1.webhook_endpoints.list().data] == [star.stdout.split()[0]]

    missing = endpoints(emulator, "delete", "we_missing")
    assert missing.returncode != 0 and "No such" in missing.stderr
    bad = endpoints(emulator, "create", "--url", "not-a-url")
    assert bad.returncode != 0 and "url" in bad.stderr
