// What the live tests share: the servers the Rust test started (environment variables), REST
// calls with the API key, the control channel that stops and starts node A, a client factory,
// and waiting for a condition driven by events (never by a sleep).
//
// Environment (set by tests/it/js_client.rs):
//   SB_URL_A  node A, which the control channel stops and starts (same port)
//   SB_URL_B  node B on the same Redis, up all the time (writes while A is down)
//   SB_KEY    an API key of the tenant
//   SB_CONTROL  127.0.0.1 port of the control channel: a line `stop` or `start`, answered `ok`

import net from 'node:net';
import WebSocket from 'ws';
import { SwitchboardClient } from '../../src/index.js';

function env(name) {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set: run the live tests through \`cargo test --test it js_client::\``);
  return v;
}

export const A = env('SB_URL_A');
export const B = env('SB_URL_B');
export const KEY = env('SB_KEY');

/** REST with the API key against `base`; throws on a non-2xx answer. */
export async function api(base, method, path, body) {
  const res = await fetch(`${base}/v1.0${path}`, {
    method,
    headers: { Authorization: `Bearer ${KEY}`, 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

/** A conversation with webchat participant `identity`, and a client token for it. */
export async function room(name, identity, { ttl } = {}) {
  const conv = await api(B, 'POST', '/conversations', { name });
  await api(B, 'POST', `/conversations/${conv.id}/participants`, { address: { type: 'webchat', target: identity } });
  const token = await mint(identity, conv.id, ttl);
  return { id: conv.id, token };
}

export async function mint(identity, conversationId, ttl) {
  const body = { identity, conversation_ids: [conversationId] };
  if (ttl) body.ttl = ttl;
  return (await api(B, 'POST', '/tokens', body)).token;
}

/** Posts `n` messages through node B (`prefix 1`, `prefix 2`, …); returns them. */
export async function post(conversationId, prefix, n) {
  const out = [];
  for (let i = 1; i <= n; i++) out.push(await api(B, 'POST', `/conversations/${conversationId}/messages`, { text: `${prefix} ${i}` }));
  return out;
}

/** Asks the Rust side to `stop` (SIGKILL) or `start` (same port) node A; resolves once done. */
export function control(command) {
  const port = Number(env('SB_CONTROL'));
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1');
    let answer = '';
    sock.setEncoding('utf8');
    sock.on('connect', () => sock.write(`${command}\n`));
    sock.on('data', (d) => {
      answer += d;
      if (answer.includes('\n')) {
        sock.end();
        if (answer.trim() === 'ok') resolve();
        else reject(new Error(`control ${command}: ${answer.trim()}`));
      }
    });
    sock.on('error', reject);
  });
}

/** A client on `base` (node A by default) with the `ws` package; closed by `t.after`. */
export function client(t, options) {
  const c = new SwitchboardClient({ url: A, WebSocket, ...options });
  t.after(() => c.close());
  return c;
}

/**
 * Resolves when `check()` is true, re-checked on every event of `emitter` (and at once);
 * rejects with `what` after `limitMs` — a safety net against hanging, not a timing assertion.
 */
export function until(emitter, check, what, limitMs = 30000) {
  return new Promise((resolve, reject) => {
    let off = () => {};
    const timer = setTimeout(() => {
      off();
      reject(new Error(`timed out waiting for ${what}`));
    }, limitMs);
    const test = () => {
      let ok = false;
      try {
        ok = check();
      } catch (e) {
        clearTimeout(timer);
        off();
        reject(e);
        return;
      }
      if (ok) {
        clearTimeout(timer);
        off();
        resolve();
      }
    };
    off = emitter.on('frame', test);
    const offState = emitter.on('state', test);
    const prev = off;
    off = () => {
      prev();
      offState();
    };
    test();
  });
}

/** Records the client's `message` events per room and its states. */
export function record(c) {
  const rec = { messages: [], states: [], subscribed: [], opens: 0, refreshed: 0 };
  c.on('message', (m) => rec.messages.push(m));
  c.on('state', (s) => rec.states.push(s));
  c.on('subscribed', (f) => rec.subscribed.push(f));
  c.on('open', () => (rec.opens += 1));
  c.on('refreshed', () => (rec.refreshed += 1));
  rec.seqs = (room) => rec.messages.filter((m) => m.conversation_id === room).map((m) => m.seq);
  return rec;
}

export const range = (from, to) => Array.from({ length: to - from + 1 }, (_, i) => from + i);
