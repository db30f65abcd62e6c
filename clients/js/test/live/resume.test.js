// Resume across a server restart on Redis: node A is SIGKILLed while two clients (token in the
// first frame, token in the subprotocol) are subscribed; node B keeps taking messages; A comes
// back on the same port; each client reconnects by itself and receives exactly the missed
// messages, once, in order — and a send made while A was down is stored once and acked.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { api, B, client, control, post, range, record, room, until } from './harness.js';

test('clients resume across a restart of their node without gap or duplicate', async (t) => {
  const r = await room('resume', 'alice');
  const frame = client(t, { token: r.token, auth: 'frame', backoff: { baseMs: 50, maxMs: 500 } });
  const proto = client(t, { token: r.token, auth: 'subprotocol', backoff: { baseMs: 50, maxMs: 500 } });
  const recs = [record(frame), record(proto)];
  for (const c of [frame, proto]) {
    c.subscribe(r.id);
    c.connect();
  }
  await Promise.all([frame, proto].map((c, i) => until(c, () => recs[i].subscribed.length === 1, 'subscribed')));
  await post(r.id, 'before', 3);
  await Promise.all([frame, proto].map((c, i) => until(c, () => recs[i].seqs(r.id).length === 3, 'seqs 1..3')));

  await control('stop');
  await Promise.all([frame, proto].map((c) => until(c, () => !c.connected, 'the client to notice the stop')));
  await post(r.id, 'while down', 5); // seqs 4..8, through node B
  const queued = frame.send(r.id, { text: 'sent while down' }); // seq 9 once A is back
  assert.deepEqual(frame.unacked(), [queued.clientId]);

  await control('start');
  const ack = await queued;
  assert.equal(ack.seq, 9);
  assert.equal(ack.duplicate, false);
  await post(r.id, 'after', 1); // seq 10: anything replayed twice would come before it
  for (const [i, c] of [frame, proto].entries()) {
    await until(c, () => recs[i].seqs(r.id).includes(10), 'seq 10');
    assert.deepEqual(recs[i].seqs(r.id), range(1, 10), 'every message exactly once, in order');
    const again = recs[i].subscribed[recs[i].subscribed.length - 1];
    assert.equal(recs[i].subscribed.length, 2, 'one subscribe per connection');
    assert.equal(again.resumed, true);
    assert.equal(again.recovered, true);
    assert.equal(again.gap, false);
    assert.ok(recs[i].states.includes('reconnecting'));
    assert.deepEqual(c.position(r.id).seq, 10);
  }
  const texts = recs[1].messages.map((m) => m.text);
  assert.deepEqual(texts.slice(3, 9), ['while down 1', 'while down 2', 'while down 3', 'while down 4', 'while down 5', 'sent while down']);
  const history = await api(B, 'GET', `/conversations/${r.id}/messages?page_size=100`);
  assert.equal(history.result.filter((m) => m.client_id === queued.clientId).length, 1);
});
