// The baseline: the webhook endpoint of Stripe's guide ("Receive Stripe events in your webhook
// endpoint", Node/Express), written out for the benchmark. It verifies the signature with the
// official `stripe` library on the raw body, switches on the event type, and answers 200 —
// it stores nothing, so it is the cost of receiving alone.
//
//   STRIPE_WEBHOOK_SECRET=whsec_… PORT=4242 node server.js
'use strict';

const express = require('express');
const stripe = require('stripe')(process.env.STRIPE_API_KEY || 'sk_test_bench_not_used');

const endpointSecret = process.env.STRIPE_WEBHOOK_SECRET;
const port = Number(process.env.PORT || 4242);
const app = express();

app.post('/webhook', express.raw({ type: 'application/json' }), (request, response) => {
  const signature = request.headers['stripe-signature'];
  let event;
  try {
    event = stripe.webhooks.constructEvent(request.body, signature, endpointSecret);
  } catch (err) {
    response.status(400).send(`Webhook Error: ${err.message}`);
    return;
  }
  switch (event.type) {
    case 'identity.verification_session.verified':
      // All the verification checks passed.
      break;
    case 'identity.verification_session.requires_input':
      // At least one of the verification checks failed.
      break;
    default:
      break;
  }
  response.json({ received: true });
});

app.listen(port, '127.0.0.1', () => {
  console.log(`listening on http://127.0.0.1:${port}/webhook`);
});
