// Sends are retried until their ack and never stored twice: a connection that swallows the
// ack (a proxy that stops forwarding server → client, as a half-dead network path does) ends
// in a probe, a reconnect and a re-send, answered `duplicate: true`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { A, api, B, client, range, record, room, until } from './harness.js';

/** A TCP proxy to node A; `mute()` stops forwarding server → client on the open connections. */
function proxy(t) {
  const target = new URL(A);
  const pairs = new Set();
  const server = net.createServer((down) => {
    const up = net.connect(Number(target.port), target.hostname);
    const pair = { down, up, muted: false };
    pairs.add(pair);
    down.on('data', (d) => up.write(d));
    up.on('data', (d) => {
      if (!pair.muted) down.write(d);
    });
    const end = () => {
      pairs.delete(pair);
      down.destroy();
      up.destroy();
    };
    down.on('close', end);
    up.on('close', end);
    down.on('error', end);
    up.on('error', end);
  });
  t.after(() => {
    for (const p of pairs) p.down.destroy();
    server.close();
  });
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () =>
      resolve({
        url: `ws://127.0.0.1:${server.address().port}/v1.0/ws`,
        connections: () => pairs.size,
        mute: () => {
          for (const p of pairs) p.muted = true;
        },
      }),
    );
  });
}

test('a send whose ack is lost is re-sent on a new connection and stored once', async (t) => {
  const r = await room('lost ack', 'bob');
  const p = await proxy(t);
  const c = client(t, { token: r.token, wsUrl: p.url, ackTimeoutMs: 200, pongTimeoutMs: 200, backoff: { baseMs: 20, maxMs: 100 } });
  const rec = record(c);
  c.subscribe(r.id);
  c.connect();
  await until(c, () => rec.subscribed.length === 1, 'subscribed');
  p.mute(); // the server still gets the send; neither its ack nor its message frame come back
  const ack = await c.send(r.id, { text: 'once only' });
  assert.equal(ack.duplicate, true, 'the ack came from a re-send the server recognised');
  assert.equal(ack.seq, 1);
  assert.ok(rec.opens >= 2, 'a new connection was opened');
  await until(c, () => rec.seqs(r.id).length === 1, 'the message, replayed on resume');
  const history = await api(B, 'GET', `/conversations/${r.id}/messages`);
  assert.deepEqual(history.result.map((m) => m.text), ['once only']);
  assert.deepEqual(rec.messages.map((m) => m.text), ['once only']);
});

test('the same client_id sent again is acked as a duplicate, never stored twice', async (t) => {
  const r = await room('dup', 'carol');
  const c = client(t, { token: r.token });
  const rec = record(c);
  c.subscribe(r.id);
  c.connect();
  const first = await c.send(r.id, { text: 'hi' });
  const second = await c.send(r.id, { text: 'hi', clientId: first.client_id });
  assert.equal(first.duplicate, false);
  assert.equal(second.duplicate, true);
  assert.equal(second.message_id, first.message_id);
  await c.send(r.id, { text: 'next' });
  await until(c, () => rec.seqs(r.id).length === 2, 'two messages');
  assert.deepEqual(rec.seqs(r.id), range(1, 2));
});

test('a send the server refuses rejects with its code and is not retried', async (t) => {
  const r = await room('refused', 'dave');
  const c = client(t, { token: r.token });
  c.connect();
  const other = await api(B, 'POST', '/conversations', { name: 'not mine' });
  await assert.rejects(c.send(other.id, { text: 'x' }), (e) => e.code === 'forbidden');
  assert.deepEqual(c.unacked(), []);
});

test('typing and read reach the other participant, by participant and without identity', async (t) => {
  const conv = await api(B, 'POST', '/conversations', { name: 'typing' });
  const pids = {};
  for (const who of ['erin', 'frank']) {
    const p = await api(B, 'POST', `/conversations/${conv.id}/participants`, { address: { type: 'webchat', target: who } });
    pids[who] = p.id;
  }
  const tok = async (who) => (await api(B, 'POST', '/tokens', { identity: who, conversation_ids: [conv.id] })).token;
  const erin = client(t, { token: await tok('erin') });
  const frank = client(t, { token: await tok('frank') });
  const seen = [];
  // End users know each other by participant: internal identities stay with agents and operators.
  frank.on('typing', (f) => seen.push(['typing', f.participant_id, f.identity]));
  frank.on('read', (f) => seen.push(['read', f.participant_id, f.identity, f.seq]));
  for (const c of [erin, frank]) {
    c.subscribe(conv.id);
    c.connect();
  }
  await until(erin, () => erin.position(conv.id).subscribed, 'erin subscribed');
  await until(frank, () => frank.position(conv.id).subscribed, 'frank subscribed');
  const ack = await frank.send(conv.id, { text: 'hello erin' });
  assert.equal(erin.typing(conv.id), true);
  assert.equal(erin.typing(conv.id), false, 'throttled');
  assert.equal(erin.read(conv.id, ack.seq), true);
  assert.equal(erin.read(conv.id, ack.seq), false, 'a read marker only rises');
  await until(frank, () => seen.length === 2, 'typing and read at frank');
  assert.deepEqual(seen, [['typing', pids.erin, undefined], ['read', pids.erin, undefined, 1]]);
});
