// Token handling: a short-lived token is refreshed on the live connection (the `refresh`
// frame) through getToken, so the connection outlives several tokens; an expired token is
// replaced before connecting and a refused one (4001) after; without getToken an expired
// token stops the client (`expired`); a refresh the server refuses keeps the old token.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { api, B, client, mint, record, room, until } from './harness.js';

test('a short-lived token is refreshed on the live connection', async (t) => {
  const r = await room('refresh', 'gina', { ttl: 4 });
  const asked = [];
  const c = client(t, {
    token: r.token,
    getToken: async ({ reason }) => {
      asked.push(reason);
      return mint('gina', r.id, 4);
    },
  });
  const rec = record(c);
  c.subscribe(r.id);
  c.connect();
  // Three refreshes outlive the first token twice over.
  await until(c, () => rec.refreshed >= 3, 'three refreshed frames');
  const ack = await c.send(r.id, { text: 'still here' });
  assert.equal(ack.seq, 1);
  assert.equal(rec.opens, 1, 'never reconnected');
  assert.ok(asked.length >= 3 && asked.every((a) => a === 'expiring'), `getToken reasons: ${asked}`);
  assert.ok(!rec.states.includes('reconnecting'));
});

test('an expired token is replaced through getToken before connecting', async (t) => {
  const r = await room('expired', 'hank', { ttl: 1 });
  await new Promise((resolve) => setTimeout(resolve, 1500)); // let the 1 s token expire
  const asked = [];
  const c = client(t, {
    token: r.token,
    getToken: async ({ reason }) => {
      asked.push(reason);
      return mint('hank', r.id, 60);
    },
  });
  const rec = record(c);
  c.subscribe(r.id);
  c.connect();
  await until(c, () => rec.subscribed.length === 1, 'subscribed with the new token');
  assert.deepEqual(asked, ['expiring']);
  assert.equal(rec.opens, 1, 'no refused connection first');
  assert.equal((await c.send(r.id, { text: 'ok' })).seq, 1);
});

test('a token the server refuses (4001) is replaced through getToken', async (t) => {
  const r = await room('forged', 'lena');
  const forged = r.token.slice(0, -4) + (r.token.endsWith('AAAA') ? 'BBBB' : 'AAAA');
  const asked = [];
  const c = client(t, {
    token: forged,
    backoff: { baseMs: 20, maxMs: 100 },
    getToken: async ({ reason }) => {
      asked.push(reason);
      return mint('lena', r.id, 60);
    },
  });
  const rec = record(c);
  c.subscribe(r.id);
  c.connect();
  await until(c, () => rec.subscribed.length === 1, 'subscribed with the new token');
  assert.deepEqual(asked, ['rejected']);
  assert.equal(rec.opens, 2, 'the refused connection, then the good one');
});

test('without getToken an expired token ends in the expired state', async (t) => {
  const r = await room('no refresh', 'ivy', { ttl: 1 });
  await new Promise((resolve) => setTimeout(resolve, 1500));
  const c = client(t, { token: r.token, backoff: { baseMs: 20, maxMs: 100 } });
  c.connect();
  await until(c, () => c.state === 'expired', 'expired');
});

test('a refresh the server refuses leaves the connection on its old token', async (t) => {
  const r = await room('refused refresh', 'mona');
  await api(B, 'POST', `/conversations/${r.id}/participants`, { address: { type: 'webchat', target: 'nick' } });
  const c = client(t, {
    token: r.token,
    // Someone else's token: a refresh must keep the identity.
    getToken: async () => mint('nick', r.id, 60),
  });
  const rec = record(c);
  c.subscribe(r.id);
  c.connect();
  await until(c, () => rec.subscribed.length === 1, 'subscribed');
  await assert.rejects(c.refreshToken(), (e) => e.code === 'forbidden');
  assert.equal(c.token, r.token, 'the old token stays');
  const ack = await c.send(r.id, { text: 'still mona' });
  assert.equal(ack.seq, 1);
  assert.equal(rec.opens, 1);
});
