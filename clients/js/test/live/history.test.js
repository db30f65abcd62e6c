// History over REST with the client's token: newest page, paging back to the first message
// without a gap or a repeat, paging forward, and a client token kept to its conversations.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { api, B, client, post, range, room } from './harness.js';

test('pages go back from the newest to the first message, each once', async (t) => {
  const r = await room('history', 'jack');
  await post(r.id, 'm', 25);
  const c = client(t, { token: r.token });
  const newest = await c.history(r.id, { pageSize: 10 });
  assert.deepEqual(newest.result.map((m) => m.seq), range(16, 25));
  assert.equal(newest.has_more, true);
  const pages = [];
  for await (const page of c.pages(r.id, { pageSize: 10 })) pages.push(page.result.map((m) => m.seq));
  assert.deepEqual(pages, [range(16, 25), range(6, 15), range(1, 5)]);
  const forward = await c.history(r.id, { after: 20, pageSize: 3 });
  assert.deepEqual(forward.result.map((m) => m.seq), [21, 22, 23]);
  assert.equal(forward.has_more, true);
  assert.equal(newest.result[9].text, 'm 25');
});

test("a client token does not read another conversation's history", async (t) => {
  const r = await room('mine', 'kate');
  const other = await api(B, 'POST', '/conversations', { name: 'theirs' });
  const c = client(t, { token: r.token });
  await assert.rejects(c.history(other.id), (e) => e.status === 403 && e.code === 'forbidden');
});
