"""The official Python SDK (PyPI `stripe`, unchanged) as judge of `idverdict emulate`:
every call below goes through the SDK's own request encoding and response parsing,
and every webhook the emulator delivers must pass the SDK's `Webhook.construct_event`."""

import stripe

from conftest import API_KEY, start_emulator, wait_until

SESSION_EVENTS = [
    "identity.verification_session.created",
    "identity.verification_session.processing",
    "identity.verification_session.verified",
    "identity.verification_session.requires_input",
    "identity.verification_session.canceled",
    "identity.verification_session.redacted",
]


def helper(client, session_id, action, **params):
    """The Identity test helpers have no SDK resource: use the SDK's raw-request facility."""
    resp = client.raw_request("post", f"/v1/test_helpers/identity/verification_sessions/{session_id}/{action}", **params)
    return client.deserialize(resp, api_mode="V1")


def test_sessions_crud_and_outcomes(emulator):
    client = emulator.client()
    vs = client.v1.identity.verification_sessions
    s = vs.create(
        params={
            "type": "document",
            "client_reference_id": "user_1",
            "metadata": {"user_id": "u1", "plan": "pro"},
            "options": {"document": {"allowed_types": ["passport", "id_card"], "require_matching_selfie": True}},
            "provided_details": {"email": "jenny@example.com"},
            "return_url": "https://example.com/back",
        }
    )
    assert isinstance(s, stripe.identity.VerificationSession)
    assert s.id.startswith("vs_") and s.status == "requires_input" and s.livemode is False
    assert s.options.document.allowed_types == ["passport", "id_card"]
    assert s.url.startswith(emulator.base) and s.client_secret.startswith(s.id)

    got = vs.retrieve(s.id, params={"expand": ["provided_details"]})
    assert got.provided_details.email == "jenny@example.com"

    updated = vs.update(s.id, params={"metadata": {"plan": ""}})
    assert updated.metadata.to_dict() == {"user_id": "u1"}

    failed = helper(client, s.id, "require_input", last_error={"code": "document_expired"})
    assert failed.status == "requires_input" and failed.last_error.code == "document_expired"

    verified = helper(client, s.id, "verify")
    assert verified.status == "verified" and verified.last_error is None

    expanded = vs.retrieve(s.id, params={"expand": ["last_verification_report", "verified_outputs"]})
    report = expanded.last_verification_report
    assert isinstance(report, stripe.identity.VerificationReport)
    assert report.verification_session == s.id and report.document.status == "verified"
    assert expanded.verified_outputs.first_name == "Jenny"

    reports = client.v1.identity.verification_reports.list(params={"verification_session": s.id})
    assert len(reports.data) == 2
    assert client.v1.identity.verification_reports.retrieve(report.id).id == report.id

    # Update is refused once verified: the SDK raises Stripe's error object as InvalidRequestError.
    try:
        vs.update(s.id, params={"metadata": {"x": "1"}})
        raise AssertionError("update of a verified session must fail")
    except stripe.InvalidRequestError as e:
        assert e.http_status == 400

    redacted = vs.redact(s.id)
    assert redacted.redaction.status == "processing" and redacted.status == "verified"
    wait_until(lambda: vs.retrieve(s.id).redaction.status == "redacted")

    other = vs.create(params={"type": "id_number", "client_reference_id": "user_2"})
    canceled = vs.cancel(other.id)
    assert canceled.status == "canceled" and canceled.url is None

    listed = vs.list(params={"limit": 1})
    assert [x.id for x in listed.data] == [other.id] and listed.has_more is True
    page2 = vs.list(params={"limit": 1, "starting_after": other.id})
    assert [x.id for x in page2.data] == [s.id]
    assert [x.id for x in vs.list(params={"client_reference_id": "user_1"}).data] == [s.id]
    assert [x.id for x in vs.list(params={"status": "canceled"}).data] == [other.id]
    all_ids = [x.id for x in vs.list(params={"limit": 1}).auto_paging_iter()]
    assert all_ids == [other.id, s.id]


def test_errors_surface_as_sdk_exceptions(emulator):
    client = emulator.client()
    try:
        client.v1.identity.verification_sessions.retrieve("vs_does_not_exist")
        raise AssertionError("expected a 404")
    except stripe.InvalidRequestError as e:
        assert e.http_status == 404 and e.code == "resource_missing"
        assert e.request_id and e.request_id.startswith("req_")
    try:
        client.v1.identity.verification_sessions.create(params={"type": "passport"})
        raise AssertionError("expected a 400")
    except stripe.InvalidRequestError as e:
        assert e.http_status == 400 and e.param == "type"
    bad = stripe.StripeClient("sk_live_not_accepted", base_addresses={"api": emulator.base}, max_network_retries=0)
    try:
        bad.v1.events.list()
        raise AssertionError("expected a 401")
    except stripe.AuthenticationError as e:
        assert e.http_status == 401


def test_idempotency_through_the_sdk(emulator):
    client = emulator.client()
    vs = client.v1.identity.verification_sessions
    a = vs.create(params={"type": "document"}, options={"idempotency_key": "user-7-attempt-1"})
    b = vs.create(params={"type": "document"}, options={"idempotency_key": "user-7-attempt-1"})
    assert a.id == b.id
    assert b.last_response.headers.get("Idempotent-Replayed") == "true"
    try:
        vs.create(params={"type": "id_number"}, options={"idempotency_key": "user-7-attempt-1"})
        raise AssertionError("expected an idempotency error")
    except stripe.IdempotencyError as e:
        assert e.http_status == 400


def test_module_level_api_base(emulator):
    """The older global configuration style (`stripe.api_base`) works too."""
    old_base, old_key = stripe.api_base, stripe.api_key
    stripe.api_base, stripe.api_key = emulator.base, API_KEY
    try:
        s = stripe.identity.VerificationSession.create(type="document", metadata={"k": "v"})
        assert stripe.identity.VerificationSession.retrieve(s.id).metadata["k"] == "v"
        ep = stripe.WebhookEndpoint.create(url="https://example.com/h", enabled_events=["*"])
        assert ep.secret.startswith("whsec_")
        assert stripe.Event.list(type="identity.verification_session.*").data[0].type == "identity.verification_session.created"
        stripe.WebhookEndpoint.delete(ep.id)
    finally:
        stripe.api_base, stripe.api_key = old_base, old_key


def test_webhooks_verified_by_construct_event_including_secret_roll(emulator, receiver):
    client = emulator.client()
    ep = client.v1.webhook_endpoints.create(
        params={"url": receiver.url, "enabled_events": SESSION_EVENTS, "description": "python sdk judge", "metadata": {"suite": "python"}}
    )
    assert ep.secret.startswith("whsec_") and ep.status == "enabled"
    assert "secret" not in client.v1.webhook_endpoints.retrieve(ep.id).to_dict()
    receiver.secrets = [ep.secret]
    vs = client.v1.identity.verification_sessions

    s = vs.create(params={"type": "document"})
    helper(client, s.id, "require_input", last_error={"code": "selfie_manipulated"})
    helper(client, s.id, "verify")
    events = receiver.wait_for(lambda evs: len(evs) >= 5)
    assert {e.type for e in events} == {
        "identity.verification_session.created",
        "identity.verification_session.processing",
        "identity.verification_session.requires_input",
        "identity.verification_session.verified",
    }
    assert all(isinstance(e, stripe.Event) for e in events)
    assert all(e.data.object.id == s.id for e in events)

    # Roll the secret, keeping the old one valid: the receiver now demands that
    # BOTH secrets verify every delivery (two v1 signatures in one header).
    rolled = emulator.emulator_post(f"/_emulator/webhook_endpoints/{ep.id}/roll_secret", expires_in="3600")
    receiver.secrets = [ep.secret, rolled["secret"]]
    s2 = vs.create(params={"type": "document"})
    vs.redact(s2.id)  # requires_input → canceled, then redacted
    events = receiver.wait_for(lambda evs: sum(e.data.object.id == s2.id for e in evs) >= 3)
    assert {e.type for e in events if e.data.object.id == s2.id} == {
        "identity.verification_session.created",
        "identity.verification_session.canceled",
        "identity.verification_session.redacted",
    }
    assert receiver.signature_headers[-1].count("v1=") == 2
    assert receiver.failures == []

    # Events through the SDK: list with filters, retrieve, delivery state.
    listed = client.v1.events.list(params={"type": "identity.verification_session.*", "limit": 100})
    assert len(listed.data) == 8
    one = client.v1.events.retrieve(listed.data[0].id)
    assert one.id == listed.data[0].id and one.type == listed.data[0].type
    pair = client.v1.events.list(params={"types": ["identity.verification_session.verified", "identity.verification_session.redacted"]})
    assert sorted(e.type for e in pair.data) == ["identity.verification_session.redacted", "identity.verification_session.verified"]
    wait_until(lambda: client.v1.events.list(params={"delivery_success": False}).data == [])
    assert all(e.pending_webhooks == 0 for e in client.v1.events.list(params={"limit": 100}).data)

    log = emulator.delivery_log()
    assert all(a["success"] for a in log["attempts"])

    disabled = client.v1.webhook_endpoints.update(ep.id, params={"disabled": True})
    assert disabled.status == "disabled"
    assert [e.id for e in client.v1.webhook_endpoints.list().data] == [ep.id]
    deleted = client.v1.webhook_endpoints.delete(ep.id)
    assert deleted.deleted is True


def test_state_survives_restart(emulator):
    client = emulator.client()
    s = client.v1.identity.verification_sessions.create(params={"type": "document", "metadata": {"k": "v"}})
    emulator.proc.terminate()
    emulator.proc.wait(timeout=10)
    again = start_emulator(emulator.data_dir)
    try:
        c2 = again.client()
        assert c2.v1.identity.verification_sessions.retrieve(s.id).metadata["k"] == "v"
        assert c2.v1.events.list().data[0].data.object.id == s.id
    finally:
        again.proc.terminate()
        again.proc.wait(timeout=10)
