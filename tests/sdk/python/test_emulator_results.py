"""Verification results through the official Python SDK (PyPI `stripe`, unchanged): the
verified person chosen with the test helper, sensitive expands with a restricted key versus a
secret key, and the report's images as Files behind short-lived FileLinks."""

import time
import urllib.error
import urllib.request

import pytest
import stripe

from conftest import RESTRICTED_KEY


def helper(client, session_id, action, **params):
    """The Identity test helpers have no SDK resource: use the SDK's raw-request facility."""
    resp = client.raw_request("post", f"/v1/test_helpers/identity/verification_sessions/{session_id}/{action}", **params)
    return client.deserialize(resp, api_mode="V1")


ADA = {
    "verified_outputs": {
        "first_name": "Ada",
        "last_name": "Lovelace",
        "dob": {"day": 10, "month": 12, "year": 1985},
        "address": {"line1": "12 St James's Square", "city": "London", "postal_code": "SW1Y 4LB", "country": "GB"},
        "email": "ada@example.org",
        "phone": "+442079460000",
        "id_number": "6789",
        "id_number_type": "us_ssn",
    },
    "document": {"type": "passport", "issuing_country": "GB", "number": "P1234567", "expiration_date": {"day": 1, "month": 6, "year": 2031}},
}


def verified_session(client):
    vs = client.v1.identity.verification_sessions
    s = vs.create(
        params={"type": "document", "options": {"document": {"require_matching_selfie": True, "require_id_number": True}}}
    )
    v = helper(client, s.id, "verify", **ADA)
    assert v.status == "verified"
    return s.id


def test_chosen_outputs_and_sensitive_expands(emulator):
    sk, rk = emulator.client(), emulator.client(RESTRICTED_KEY)
    sid = verified_session(sk)

    got = sk.v1.identity.verification_sessions.retrieve(sid, params={"expand": ["verified_outputs"]})
    vo = got.verified_outputs
    assert (vo.first_name, vo.last_name, vo.email, vo.phone) == ("Ada", "Lovelace", "ada@example.org", "+442079460000")
    assert vo.address.city == "London" and vo.address.country == "GB"
    assert "dob" not in vo and "id_number" not in vo

    # A secret key naming a sensitive field: the SDK raises Stripe's permission error.
    for path in ["verified_outputs.dob", "last_verification_report.document.number"]:
        with pytest.raises(stripe.PermissionError) as err:
            sk.v1.identity.verification_sessions.retrieve(sid, params={"expand": [path]})
        assert err.value.http_status == 403 and "restricted" in err.value.user_message

    full = rk.v1.identity.verification_sessions.retrieve(
        sid,
        params={
            "expand": [
                "verified_outputs.dob",
                "verified_outputs.id_number",
                "last_verification_report.document.number",
                "last_verification_report.document.expiration_date",
            ]
        },
    )
    assert (full.verified_outputs.dob.day, full.verified_outputs.dob.month, full.verified_outputs.dob.year) == (10, 12, 1985)
    assert full.verified_outputs.id_number == "6789"
    report = full.last_verification_report
    assert isinstance(report, stripe.identity.VerificationReport)
    assert report.document.number == "P1234567" and report.document.expiration_date.year == 2031
    assert report.document.issuing_country == "GB" and report.document.type == "passport"
    assert "dob" not in report.document  # not named
    assert report.email.email == "ada@example.org" and report.id_number.id_number_type == "us_ssn"

    plain = sk.v1.identity.verification_reports.retrieve(report.id)
    assert "number" not in plain.document and plain.document.first_name == "Ada"
    assert rk.v1.identity.verification_reports.retrieve(report.id, params={"expand": ["id_number.dob"]}).id_number.dob.year == 1985


def fetch(url):
    with urllib.request.urlopen(url, timeout=10) as res:
        return res.status, res.headers.get("Content-Type"), res.read()


def test_file_links_to_report_images(emulator):
    sk, rk = emulator.client(), emulator.client(RESTRICTED_KEY)
    sid = verified_session(sk)
    report = sk.v1.identity.verification_sessions.retrieve(sid, params={"expand": ["last_verification_report"]}).last_verification_report
    front, selfie = report.document.files[0], report.selfie.selfie

    f = sk.v1.files.retrieve(front)
    assert isinstance(f, stripe.File)
    assert f.purpose == "identity_document_downloadable" and f.size > 0 and f.id == front
    assert sk.v1.files.retrieve(selfie).purpose == "selfie"

    with pytest.raises(stripe.PermissionError):
        sk.v1.file_links.create(params={"file": front, "expires_at": int(time.time()) + 30})
    with pytest.raises(stripe.InvalidRequestError) as err:
        rk.v1.file_links.create(params={"file": front, "expires_at": int(time.time()) + 3600})
    assert err.value.param == "expires_at"

    link = rk.v1.file_links.create(params={"file": front, "expires_at": int(time.time()) + 30})
    assert isinstance(link, stripe.FileLink)
    assert link.id.startswith("link_") and link.expired is False and link.file == front
    status, ctype, body = fetch(link.url)
    assert status == 200 and ctype == "image/svg+xml"
    assert "TEST DOCUMENT — NOT REAL".encode() in body and sid.encode() in body

    assert rk.v1.file_links.retrieve(link.id).url == link.url
    assert [x.id for x in rk.v1.file_links.list(params={"file": front}).data] == [link.id]
    ended = rk.v1.file_links.update(link.id, params={"expires_at": "now"})
    assert ended.expired is True and ended.url is None
    with pytest.raises(urllib.error.HTTPError) as gone:
        fetch(link.url)
    assert gone.value.code == 410
