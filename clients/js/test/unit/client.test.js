// The client's bookkeeping against a scripted socket (no server): what it writes on each
// connection, how it keeps each room's position, what it emits. The live tests check the same
// rules against a real server; these pin the edge cases a server will not produce on demand.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SwitchboardClient } from '../../src/index.js';

/** A WebSocket stand-in: records what is sent; the test plays the server. */
function fakeSockets() {
  const made = [];
  class FakeSocket {
    constructor(url, protocols) {
      this.url = url;
      this.protocols = protocols;
      this.readyState = 0;
      this.sent = [];
      made.push(this);
    }
    send(text) {
      this.sent.push(JSON.parse(text));
    }
    close() {
      this.readyState = 3;
    }
    // ---- the test's side
    open() {
      this.readyState = 1;
      this.onopen();
    }
    frame(f) {
      this.onmessage({ data: JSON.stringify(f) });
    }
    drop(code = 1006) {
      this.readyState = 3;
      this.onclose({ code, reason: '' });
    }
  }
  return { FakeSocket, made, last: () => made[made.length - 1] };
}

const ROOM = '0190c0de-0000-7000-8000-000000000001';
const tick = () => new Promise((resolve) => setTimeout(resolve, 0));

function setup(t, extra = {}) {
  const f = fakeSockets();
  const c = new SwitchboardClient({
    url: 'http://127.0.0.1:1',
    token: 'tok',
    WebSocket: f.FakeSocket,
    rate: null,
    backoff: { baseMs: 1, maxMs: 1 },
    ...extra,
  });
  const seen = { messages: [], subscribed: [] };
  c.on('message', (m) => seen.messages.push(m.seq));
  c.on('subscribed', (s) => seen.subscribed.push(s));
  t.after(() => c.close());
  return { c, f, seen };
}

/** Drops the connection and opens the one the client makes next (after its backoff). */
async function reconnect(f) {
  const before = f.made.length;
  f.last().drop();
  while (f.made.length === before) await tick();
  f.last().open();
}

test('the token goes in the first frame, never in the URL', async (t) => {
  const { c, f } = setup(t);
  c.subscribe(ROOM);
  c.connect();
  await tick();
  f.last().open();
  assert.equal(f.last().url, 'ws://127.0.0.1:1/v1.0/ws');
  assert.equal(f.last().protocols, undefined);
  assert.deepEqual(f.last().sent[0], { type: 'auth', token: 'tok' });
  assert.deepEqual(f.last().sent[1], { type: 'subscribe', conversation_id: ROOM });
});

test('or in the subprotocol list next to switchboard.v1', async (t) => {
  const { c, f } = setup(t, { auth: 'subprotocol' });
  c.connect();
  await tick();
  f.last().open();
  assert.deepEqual(f.last().protocols, ['switchboard.v1', 'token.tok']);
  assert.ok(!f.last().url.includes('tok'));
  assert.deepEqual(f.last().sent, []);
});

test('a room resumes from the last seq and epoch; repeats are dropped', async (t) => {
  const { c, f, seen } = setup(t);
  c.subscribe(ROOM);
  c.connect();
  await tick();
  f.last().open();
  f.last().frame({ type: 'subscribed', conversation_id: ROOM, seq: 5, epoch: 'e1', recovered: false, online: [] });
  assert.equal(seen.subscribed[0].gap, false, 'no since was sent: nothing to recover');
  for (const seq of [6, 7, 7, 6]) f.last().frame({ type: 'message', message: { conversation_id: ROOM, seq, id: `m${seq}` } });
  assert.deepEqual(seen.messages, [6, 7]);
  await reconnect(f);
  assert.deepEqual(f.last().sent[1], { type: 'subscribe', conversation_id: ROOM, since: 7, epoch: 'e1' });
  f.last().frame({ type: 'subscribed', conversation_id: ROOM, seq: 9, epoch: 'e1', recovered: true, online: [] });
  for (const seq of [8, 9]) f.last().frame({ type: 'message', message: { conversation_id: ROOM, seq, id: `m${seq}` } });
  assert.deepEqual(seen.messages, [6, 7, 8, 9]);
  assert.deepEqual([seen.subscribed[1].resumed, seen.subscribed[1].gap, seen.subscribed[1].since], [true, false, 7]);
});

test('a resume the server cannot replay is a gap and continues from its seq', async (t) => {
  const { c, f, seen } = setup(t);
  c.subscribe(ROOM, { since: 40, epoch: 'old' });
  c.connect();
  await tick();
  f.last().open();
  assert.deepEqual(f.last().sent[1], { type: 'subscribe', conversation_id: ROOM, since: 40, epoch: 'old' });
  // Redis lost writes: a new epoch, and the room's newest seq is below what we had.
  f.last().frame({ type: 'subscribed', conversation_id: ROOM, seq: 12, epoch: 'new', recovered: false, online: [] });
  assert.deepEqual([seen.subscribed[0].resumed, seen.subscribed[0].gap], [true, true]);
  assert.deepEqual(c.position(ROOM), { seq: 12, epoch: 'new', subscribed: true });
  f.last().frame({ type: 'message', message: { conversation_id: ROOM, seq: 13, id: 'x' } });
  assert.deepEqual(seen.messages, [13], 'seq 13 is new even though 40 was seen under the old epoch');
});

test('sends wait for a connection, are written again after a drop, and settle on ack or error', async (t) => {
  const { c, f } = setup(t);
  const a = c.send(ROOM, { text: 'one' });
  const b = c.send(ROOM, { text: 'two' });
  c.connect();
  await tick();
  f.last().open();
  const sends = () => f.last().sent.filter((x) => x.type === 'send');
  assert.deepEqual(sends().map((x) => [x.text, x.client_id]), [['one', a.clientId], ['two', b.clientId]]);
  await reconnect(f);
  assert.deepEqual(sends().map((x) => x.client_id), [a.clientId, b.clientId], 'both re-sent with the same client_id');
  f.last().frame({ type: 'ack', conversation_id: ROOM, client_id: a.clientId, seq: 1, message_id: 'm1', duplicate: true });
  f.last().frame({ type: 'error', code: 'closed', message: 'closed', conversation_id: ROOM, client_id: b.clientId });
  assert.equal((await a).duplicate, true);
  await assert.rejects(b, (e) => e.code === 'closed' && e.clientId === b.clientId);
  assert.deepEqual(c.unacked(), []);
  await reconnect(f);
  assert.deepEqual(sends(), [], 'nothing left to re-send');
});

test('a read marker set offline is sent once subscribed, and only ever rises', async (t) => {
  const { c, f } = setup(t);
  c.subscribe(ROOM);
  assert.equal(c.read(ROOM, 3), true);
  assert.equal(c.read(ROOM, 2), false);
  c.connect();
  await tick();
  f.last().open();
  assert.ok(!f.last().sent.some((x) => x.type === 'read'), 'not before subscribed');
  f.last().frame({ type: 'subscribed', conversation_id: ROOM, seq: 5, epoch: 'e', recovered: false, online: [], last_read_seq: 1 });
  assert.deepEqual(f.last().sent.filter((x) => x.type === 'read'), [{ type: 'read', conversation_id: ROOM, seq: 3 }]);
});

test('a room the server refuses or removes is not subscribed again', async (t) => {
  const { c, f } = setup(t);
  const OTHER = ROOM.replace(/1$/, '2');
  c.subscribe(ROOM);
  c.subscribe(OTHER);
  c.connect();
  await tick();
  f.last().open();
  f.last().frame({ type: 'error', code: 'forbidden', message: 'no', conversation_id: ROOM });
  f.last().frame({ type: 'subscribed', conversation_id: OTHER, seq: 0, epoch: 'e', recovered: false, online: [] });
  f.last().frame({ type: 'unsubscribed', conversation_id: OTHER, reason: 'removed' });
  assert.deepEqual(c.rooms(), []);
  await reconnect(f);
  assert.ok(!f.last().sent.some((x) => x.type === 'subscribe'));
});

test('unknown frame types are emitted under their own type', async (t) => {
  const { c, f } = setup(t);
  const got = [];
  c.on('status', (x) => got.push(x.status));
  c.connect();
  await tick();
  f.last().open();
  f.last().frame({ type: 'status', conversation_id: ROOM, status: 'resolved' });
  assert.deepEqual(got, ['resolved']);
});
