// The official Node SDK (npm `stripe`) as judge of idverdict's webhook signatures.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createServer } from 'node:http';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import Stripe from 'stripe';

const BIN = process.env.IDVERDICT_BIN ?? 'target/debug/idverdict';
const SECRET = 'whsec_node_sdk_judge_secret';
const stripe = new Stripe('sk_test_unused');

async function startServe() {
  const dataDir = mkdtempSync(join(tmpdir(), 'idv-node-'));
  const env = { ...process.env, STRIPE_WEBHOOK_SECRET: SECRET, IDVERDICT_API_TOKEN: 'node-sdk-test-token-0123456789', IDVERDICT_LISTEN: '127.0.0.1:0', IDVERDICT_DATA_DIR: dataDir };
  delete env.DATABASE_URL;
  const proc = spawn(BIN, ['serve'], { env, stdio: ['ignore', 'pipe', 'ignore'] });
  const lines = createInterface({ input: proc.stdout });
  for await (const line of lines) {
    if (line.startsWith('webhook receiver listening on ')) return { proc, url: line.split(' ').pop() };
  }
  throw new Error('serve did not start');
}

function identityEvent(id, session) {
  const now = Math.floor(Date.now() / 1000);
  return JSON.stringify({
    id, object: 'event', api_version: '2026-07-29.dahlia', created: now,
    data: { object: { id: session, object: 'identity.verification_session', client_reference_id: 'node_user', created: now - 60, last_error: { code: 'selfie_face_mismatch', reason: 'The face did not match.' }, last_verification_report: 'vr_1node', livemode: false, metadata: {}, status: 'requires_input', type: 'document' } },
    livemode: false, pending_webhooks: 1, request: { id: null, idempotency_key: null }, type: 'identity.verification_session.requires_input',
  }, null, 2);
}

test('serve accepts events signed with generateTestHeaderString', async () => {
  const { proc, url } = await startServe();
  try {
    const payload = identityEvent('evt_1NodeSdkSigned', 'vs_1NodeSdk');
    const header = stripe.webhooks.generateTestHeaderString({ payload, secret: SECRET });
    let res = await fetch(url, { method: 'POST', body: payload, headers: { 'content-type': 'application/json', 'stripe-signature': header } });
    assert.equal(res.status, 200);
    assert.equal((await res.json()).received, true);

    const wrong = stripe.webhooks.generateTestHeaderString({ payload, secret: 'whsec_wrong' });
    res = await fetch(url, { method: 'POST', body: payload, headers: { 'stripe-signature': wrong } });
    assert.equal(res.status, 400);
    assert.equal((await res.json()).error.code, 'no_matching_signature');
  } finally {
    proc.kill('SIGTERM');
  }
});

test('constructEvent accepts what idverdict trigger signs', async () => {
  const received = [];
  const errors = [];
  const server = createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      try {
        received.push(stripe.webhooks.constructEvent(Buffer.concat(chunks), req.headers['stripe-signature'], SECRET));
        res.writeHead(200).end();
      } catch (e) {
        errors.push(String(e));
        res.writeHead(400).end();
      }
    });
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${server.address().port}/webhook`;
  try {
    const run = (args) => new Promise((resolve, reject) => {
      const p = spawn(BIN, args, { stdio: 'ignore' });
      p.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`trigger exited ${code}`))));
    });
    await run(['trigger', '--flow', 'verified', '--user', 'node_user', '--url', url, '--secret', SECRET]);
    await run(['trigger', 'requires_input', '--error-code', 'consent_declined', '--url', url, '--secret', `whsec_rolled_other,${SECRET}`]);
    assert.deepEqual(errors, []);
    assert.deepEqual(received.map((e) => e.type), [
      'identity.verification_session.created',
      'identity.verification_session.processing',
      'identity.verification_session.verified',
      'identity.verification_session.requires_input',
    ]);
    assert.equal(received[3].data.object.last_error.code, 'consent_declined');
  } finally {
    server.close();
    server.closeAllConnections();
  }
});
