// Uploads through the client (`POST /v1.0/media`, multipart `conversation_id` then `file`) with
// an end-user token, a message that references the stored file by `media_id`, and the file
// read back through the message's signed URL. Needs the media module (src/media/upload.rs):
// tests/it/js_client.rs runs this directory only in a tree that has it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { client, room } from '../live/harness.js';

// A 1×1 PNG.
const PNG = Buffer.from(
  'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==',
  'base64',
);

test('a file uploaded with a client token goes out in a message', async (t) => {
  const r = await room('upload', 'olga');
  const c = client(t, { token: r.token });
  c.subscribe(r.id);
  c.connect();
  const media = await c.upload(new Blob([PNG], { type: 'image/png' }), { conversationId: r.id, filename: 'dot.png' });
  assert.equal(media.content_type, 'image/png');
  assert.equal(media.size, PNG.length);
  assert.ok(media.id && media.url, JSON.stringify(media));
  const ack = await c.send(r.id, { text: 'a dot', medias: [{ media_id: media.id }] });
  const page = await c.history(r.id);
  const m = page.result.find((x) => x.id === ack.message_id);
  assert.equal(m.medias.length, 1);
  assert.equal(m.medias[0].media_id, media.id);
  const res = await fetch(m.medias[0].url); // our signed URL
  assert.equal(res.headers.get('content-type'), 'image/png');
  assert.equal(res.status, 200);
  assert.deepEqual(Buffer.from(await res.arrayBuffer()), PNG);
});
