// The official Node SDK (npm `stripe`, unchanged) as judge of `idverdict emulate`:
// every call goes through the SDK's own request encoding and response parsing,
// and every webhook the emulator delivers must pass `stripe.webhooks.constructEvent`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createServer } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import Stripe from 'stripe';

const BIN = process.env.IDVERDICT_BIN ?? 'target/debug/idverdict';
const KEY = 'sk_test_node_sdk_judge';
// A restricted key: the only kind that may read sensitive verification results and images.
const RESTRICTED_KEY = 'rk_test_node_sdk_judge';
const SESSION_EVENTS = [
  'identity.verification_session.created',
  'identity.verification_session.processing',
  'identity.verification_session.verified',
  'identity.verification_session.requires_input',
  'identity.verification_session.canceled',
  'identity.verification_session.redacted',
];

async function startEmulator(dataDir = mkdtempSync(join(tmpdir(), 'idv-emu-node-'))) {
  const args = ['emulate', '--listen', '127.0.0.1:0', '--data', dataDir, '--time-scale', '0.001', '--processing-delay-ms', '100'];
  const proc = spawn(BIN, args, { stdio: ['ignore', 'pipe', 'ignore'] });
  const lines = createInterface({ input: proc.stdout });
  for await (const line of lines) {
    assert.match(line, /^emulator listening on http:\/\/127\.0\.0\.1:\d+$/);
    const base = new URL(line.split(' ').pop());
    const client = (key) => new Stripe(key, { host: base.hostname, port: Number(base.port), protocol: 'http', maxNetworkRetries: 0 });
    const stripe = client(KEY);
    const restricted = client(RESTRICTED_KEY);
    const stop = async () => {
      if (proc.exitCode === null) {
        const exited = new Promise((resolve) => proc.once('exit', resolve));
        proc.kill('SIGTERM');
        await exited;
      }
    };
    return { proc, base: base.origin, stripe, restricted, dataDir, stop };
  }
  throw new Error('emulate did not start');
}

async function withEmulator(fn) {
  const emu = await startEmulator();
  try {
    await fn(emu);
  } finally {
    await emu.stop();
    rmSync(emu.dataDir, { recursive: true, force: true });
  }
}

// The Identity test helpers have no SDK resource: use the SDK's rawRequest.
function helper(stripe, id, action, params = {}) {
  return stripe.rawRequest('POST', `/v1/test_helpers/identity/verification_sessions/${id}/${action}`, params);
}

async function waitFor(fn, timeoutMs = 15000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 50));
  }
}

// A receiver that accepts a delivery only if constructEvent accepts it with
// every secret in `secrets` (two during a secret roll).
async function startReceiver(stripe) {
  const state = { secrets: [], events: [], failures: [], headers: [] };
  const server = createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks);
      const header = req.headers['stripe-signature'];
      try {
        let event;
        for (const secret of state.secrets) event = stripe.webhooks.constructEvent(raw, header, secret);
        state.events.push(event);
        state.headers.push(header);
        res.writeHead(200).end();
      } catch (e) {
        state.failures.push(String(e));
        res.writeHead(400).end();
      }
    });
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  state.url = `http://127.0.0.1:${server.address().port}/webhooks`;
  // close() alone waits for the emulator's keep-alive connection to time out (minutes).
  state.close = () =>
    new Promise((r) => {
      server.close(r);
      server.closeAllConnections();
    });
  return state;
}

test('sessions: create, retrieve, list, update, cancel, redact, outcomes, expand', async () => {
  await withEmulator(async ({ stripe, base }) => {
    const vs = stripe.identity.verificationSessions;
    const s = await vs.create({
      type: 'document',
      client_reference_id: 'node_user',
      metadata: { user_id: 'u1', plan: 'pro' },
      options: { document: { allowed_types: ['passport', 'driving_license'], require_matching_selfie: true } },
      provided_details: { email: 'jenny@example.com' },
      return_url: 'https://example.com/back',
    });
    assert.match(s.id, /^vs_/);
    assert.equal(s.object, 'identity.verification_session');
    assert.equal(s.status, 'requires_input');
    assert.deepEqual(s.options.document.allowed_types, ['passport', 'driving_license']);
    assert.ok(s.url.startsWith(base));
    assert.ok(s.lastResponse.requestId.startsWith('req_'));

    const got = await vs.retrieve(s.id, { expand: ['provided_details'] });
    assert.equal(got.provided_details.email, 'jenny@example.com');
    const updated = await vs.update(s.id, { metadata: { plan: '' } });
    assert.deepEqual(updated.metadata, { user_id: 'u1' });

    const failed = await helper(stripe, s.id, 'require_input', { last_error: { code: 'id_number_mismatch' } });
    assert.equal(failed.status, 'requires_input');
    assert.equal(failed.last_error.code, 'id_number_mismatch');
    const verified = await helper(stripe, s.id, 'verify');
    assert.equal(verified.status, 'verified');

    const expanded = await vs.retrieve(s.id, { expand: ['last_verification_report', 'verified_outputs'] });
    assert.equal(expanded.last_verification_report.object, 'identity.verification_report');
    assert.equal(expanded.last_verification_report.verification_session, s.id);
    assert.equal(expanded.verified_outputs.last_name, 'Rosen');
    const report = await stripe.identity.verificationReports.retrieve(expanded.last_verification_report.id);
    assert.equal(report.id, expanded.last_verification_report.id);
    const reports = await stripe.identity.verificationReports.list({ verification_session: s.id });
    assert.equal(reports.data.length, 2);

    await assert.rejects(vs.update(s.id, { metadata: { x: '1' } }), (e) => e instanceof Stripe.errors.StripeInvalidRequestError && e.statusCode === 400);
    await assert.rejects(vs.retrieve('vs_missing'), (e) => e.statusCode === 404 && e.code === 'resource_missing');
    await assert.rejects(vs.create({ type: 'passport' }), (e) => e.statusCode === 400 && e.param === 'type');

    const redacted = await vs.redact(s.id);
    assert.equal(redacted.redaction.status, 'processing');
    await waitFor(async () => (await vs.retrieve(s.id)).redaction?.status === 'redacted');

    const other = await vs.create({ type: 'id_number', client_reference_id: 'second' });
    const canceled = await vs.cancel(other.id);
    assert.equal(canceled.status, 'canceled');
    assert.equal(canceled.url, null);

    const page = await vs.list({ limit: 1 });
    assert.deepEqual(page.data.map((x) => x.id), [other.id]);
    assert.equal(page.has_more, true);
    const all = [];
    for await (const x of vs.list({ limit: 1 })) all.push(x.id);
    assert.deepEqual(all, [other.id, s.id]);
    assert.deepEqual((await vs.list({ status: 'canceled' })).data.map((x) => x.id), [other.id]);
    assert.deepEqual((await vs.list({ client_reference_id: 'node_user' })).data.map((x) => x.id), [s.id]);
  });
});

test('idempotency keys replay through the SDK', async () => {
  await withEmulator(async ({ stripe }) => {
    const vs = stripe.identity.verificationSessions;
    const a = await vs.create({ type: 'document' }, { idempotencyKey: 'node-user-1' });
    const b = await vs.create({ type: 'document' }, { idempotencyKey: 'node-user-1' });
    assert.equal(a.id, b.id);
    assert.equal(b.lastResponse.headers['idempotent-replayed'], 'true');
    await assert.rejects(vs.create({ type: 'id_number' }, { idempotencyKey: 'node-user-1' }), (e) => e.type === 'StripeIdempotencyError');
  });
});

test('webhooks pass constructEvent, including during a secret roll', async () => {
  await withEmulator(async ({ stripe, base }) => {
    const rx = await startReceiver(stripe);
    try {
      const ep = await stripe.webhookEndpoints.create({ url: rx.url, enabled_events: SESSION_EVENTS, description: 'node sdk judge' });
      assert.match(ep.secret, /^whsec_/);
      assert.equal((await stripe.webhookEndpoints.retrieve(ep.id)).secret, undefined);
      rx.secrets = [ep.secret];
      const vs = stripe.identity.verificationSessions;
      const s = await vs.create({ type: 'document' });
      await helper(stripe, s.id, 'require_input', { last_error: { code: 'consent_declined' } });
      await helper(stripe, s.id, 'verify');
      await waitFor(() => rx.events.length >= 5);
      assert.deepEqual(new Set(rx.events.map((e) => e.type)), new Set([
        'identity.verification_session.created',
        'identity.verification_session.processing',
        'identity.verification_session.requires_input',
        'identity.verification_session.verified',
      ]));
      assert.ok(rx.events.every((e) => e.data.object.id === s.id && e.livemode === false));

      // Roll, keeping the old secret for an hour: both must verify every delivery.
      const res = await fetch(`${base}/_emulator/webhook_endpoints/${ep.id}/roll_secret`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: 'expires_in=3600',
      });
      const rolled = await res.json();
      rx.secrets = [ep.secret, rolled.secret];
      const s2 = await vs.create({ type: 'document' });
      await vs.cancel(s2.id);
      await waitFor(() => rx.events.filter((e) => e.data.object.id === s2.id).length >= 2);
      assert.equal(rx.headers.at(-1).match(/v1=/g).length, 2);
      assert.deepEqual(rx.failures, []);

      const events = await stripe.events.list({ type: 'identity.verification_session.*', limit: 100 });
      assert.equal(events.data.length, 7);
      const one = await stripe.events.retrieve(events.data[0].id);
      assert.equal(one.id, events.data[0].id);
      const two = await stripe.events.list({ types: ['identity.verification_session.canceled', 'identity.verification_session.verified'] });
      assert.deepEqual(two.data.map((e) => e.type).sort(), ['identity.verification_session.canceled', 'identity.verification_session.verified']);
      await waitFor(async () => (await stripe.events.list({ delivery_success: false })).data.length === 0);

      const disabled = await stripe.webhookEndpoints.update(ep.id, { disabled: true });
      assert.equal(disabled.status, 'disabled');
      assert.deepEqual((await stripe.webhookEndpoints.list()).data.map((e) => e.id), [ep.id]);
      const del = await stripe.webhookEndpoints.del(ep.id);
      assert.equal(del.deleted, true);
    } finally {
      await rx.close();
    }
  });
});

test('state survives a restart', async () => {
  const emu = await startEmulator();
  const s = await emu.stripe.identity.verificationSessions.create({ type: 'document', metadata: { k: 'v' } });
  await emu.stop();
  const again = await startEmulator(emu.dataDir);
  try {
    assert.equal((await again.stripe.identity.verificationSessions.retrieve(s.id)).metadata.k, 'v');
  } finally {
    await again.stop();
    rmSync(emu.dataDir, { recursive: true, force: true });
  }
});

const ADA = {
  verified_outputs: {
    first_name: 'Ada',
    last_name: 'Lovelace',
    dob: { day: 10, month: 12, year: 1985 },
    address: { line1: "12 St James's Square", city: 'London', postal_code: 'SW1Y 4LB', country: 'GB' },
    email: 'ada@example.org',
    id_number: '6789',
    id_number_type: 'us_ssn',
  },
  document: { type: 'passport', issuing_country: 'GB', number: 'P1234567', expiration_date: { day: 1, month: 6, year: 2031 } },
};

async function verifiedAda(stripe) {
  const s = await stripe.identity.verificationSessions.create({
    type: 'document',
    options: { document: { require_matching_selfie: true, require_id_number: true } },
  });
  const v = await helper(stripe, s.id, 'verify', ADA);
  assert.equal(v.status, 'verified');
  return s.id;
}

test('verify helper with chosen outputs; sensitive expands need a restricted key', async () => {
  await withEmulator(async ({ stripe, restricted }) => {
    const id = await verifiedAda(stripe);
    const vs = stripe.identity.verificationSessions;
    const got = await vs.retrieve(id, { expand: ['verified_outputs'] });
    assert.equal(got.verified_outputs.first_name, 'Ada');
    assert.equal(got.verified_outputs.address.city, 'London');
    assert.equal(got.verified_outputs.email, 'ada@example.org');
    assert.equal(got.verified_outputs.dob, undefined);
    assert.equal(got.verified_outputs.id_number, undefined);

    for (const path of ['verified_outputs.dob', 'last_verification_report.document.expiration_date']) {
      await assert.rejects(vs.retrieve(id, { expand: [path] }), (e) =>
        e instanceof Stripe.errors.StripePermissionError && e.statusCode === 403 && e.message.includes('restricted'));
    }

    const full = await restricted.identity.verificationSessions.retrieve(id, {
      expand: ['verified_outputs.dob', 'verified_outputs.id_number', 'last_verification_report.document.number'],
    });
    assert.deepEqual(full.verified_outputs.dob, { day: 10, month: 12, year: 1985 });
    assert.equal(full.verified_outputs.id_number, '6789');
    assert.equal(full.last_verification_report.object, 'identity.verification_report');
    assert.equal(full.last_verification_report.document.number, 'P1234567');
    assert.equal(full.last_verification_report.document.issuing_country, 'GB');
    assert.equal(full.last_verification_report.document.expiration_date, undefined, 'not named');
  });
});

test('FileLinks to the report images: restricted key, 30-second expiry, served until expired', async () => {
  await withEmulator(async ({ stripe, restricted }) => {
    const id = await verifiedAda(stripe);
    const session = await stripe.identity.verificationSessions.retrieve(id, { expand: ['last_verification_report'] });
    const report = session.last_verification_report;
    const [front] = report.document.files;
    const file = await stripe.files.retrieve(front);
    assert.equal(file.object, 'file');
    assert.equal(file.purpose, 'identity_document_downloadable');
    assert.equal((await stripe.files.retrieve(report.selfie.selfie)).purpose, 'selfie');

    const now = () => Math.floor(Date.now() / 1000);
    await assert.rejects(stripe.fileLinks.create({ file: front, expires_at: now() + 30 }), (e) => e instanceof Stripe.errors.StripePermissionError);
    await assert.rejects(restricted.fileLinks.create({ file: front, expires_at: now() + 3600 }), (e) =>
      e instanceof Stripe.errors.StripeInvalidRequestError && e.param === 'expires_at');

    const link = await restricted.fileLinks.create({ file: front, expires_at: now() + 30 });
    assert.equal(link.object, 'file_link');
    assert.equal(link.expired, false);
    assert.equal(link.file, front);
    const res = await fetch(link.url);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), 'image/svg+xml');
    const svg = await res.text();
    assert.ok(svg.includes('TEST DOCUMENT — NOT REAL') && svg.includes(id));

    assert.equal((await restricted.fileLinks.retrieve(link.id)).url, link.url);
    const ended = await restricted.fileLinks.update(link.id, { expires_at: 'now' });
    assert.equal(ended.expired, true);
    assert.equal(ended.url, null);
    assert.equal((await fetch(link.url)).status, 410);
  });
});
