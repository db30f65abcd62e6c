// The Switchboard client: rooms with their resume position, sends that retry until acked,
// typing and read markers, token refresh, and the server's frames as events.
//
// Owns the protocol's rules on the client side, once for every user in this repository (the
// chat page, the website widget) and outside it. Does not own the transport (connection.js),
// REST (rest.js) or any UI state.
//
// Resume: each room keeps the highest `seq` received from the server's ordered stream and the
// room's `epoch`; every (re)connect subscribes with `since` and `epoch`, and the server replays
// exactly what was missed. `subscribed` with `gap: true` (a `since` was sent and could not be
// replayed: too far behind, trimmed, or a new epoch) tells the app to reload over REST; the
// position then continues from the `seq` in `subscribed`. A message at or below the position
// is a duplicate and is not emitted.
//
// Sends: each has a `client_id` (the server deduplicates by it), stays queued until its `ack`
// (or an `error` naming it), is written again on every new connection, and again on the same
// connection after `ackTimeoutMs` together with a liveness probe (a lost ack on a half-dead
// connection then ends in a reconnect and a re-send, answered `duplicate: true`).

import { Connection, CONNECTION_DEFAULTS } from './connection.js';
import { Emitter } from './emitter.js';
import { ClientError, FRAMES } from './frames.js';
import { Rest } from './rest.js';
import { decodeToken, newClientId } from './token.js';

export { ClientError };

const DEFAULTS = {
  ackTimeoutMs: 10000,
  typingEveryMs: 2500,
  refreshBeforeMs: 60000,
  rateLimitedRetryMs: 1000,
};

/** Whether `token`'s `exp` claim has passed (a token that is not a JWT never "expires" here). */
function expired(token) {
  const claims = decodeToken(token);
  return !!claims && claims.exp * 1000 <= Date.now();
}

function baseUrl(url) {
  if (url) return String(url).replace(/\/+$/, '');
  if (globalThis.location && globalThis.location.origin) return globalThis.location.origin;
  throw new TypeError('`url` is required outside a browser page');
}

export class SwitchboardClient extends Emitter {
  /** @param {import('./index.js').ClientOptions} [options] */
  constructor(options = {}) {
    super();
    const o = { ...DEFAULTS, ...CONNECTION_DEFAULTS, ...options };
    if (!o.token && !o.getToken) throw new TypeError('pass `token` or `getToken`');
    this.opts = o;
    this.url = baseUrl(o.url);
    this.token = o.token || null;
    this.getToken = o.getToken || null;
    this.roomsById = new Map();
    this.sends = new Map();
    this.watching = false;
    this.refreshTimer = 0;
    this.refreshing = null;
    this.rest = new Rest({ url: this.url, auth: () => this.token, fetch: o.fetch });
    const wsUrl = o.wsUrl || `${this.url.replace(/^http/, 'ws')}/v1.0/ws`;
    this.conn = new Connection({
      ...o,
      url: wsUrl,
      obtainToken: (reason) => this.obtainToken(reason),
      onOpen: () => this.onOpen(),
      onFrame: (f) => this.onFrame(f),
      onState: (s, detail) => this.onState(s, detail),
    });
  }

  // ---- lifecycle -------------------------------------------------------------------------------

  /** Starts connecting (and reconnecting until `close()`). */
  connect() {
    if (this.token && !this.refreshTimer) this.scheduleRefresh(this.token);
    this.conn.start();
    return this;
  }

  /** Closes for good: no reconnect; unacked sends are rejected with `stopped`. */
  close() {
    clearTimeout(this.refreshTimer);
    this.refreshTimer = 0;
    this.conn.stop();
    for (const [id, s] of this.sends) {
      clearTimeout(s.timer);
      this.sends.delete(id);
      s.reject(new ClientError('stopped', 'the client was closed before the server acknowledged', { clientId: id }));
    }
  }

  /** idle | connecting | connected | reconnecting | offline | expired | stopped */
  get state() {
    return this.conn.state;
  }

  get connected() {
    return this.conn.isOpen;
  }

  // ---- tokens ----------------------------------------------------------------------------------

  async obtainToken(reason) {
    const fresh = this.token && !expired(this.token);
    if (reason === 'connect' && fresh) return this.token;
    if (!this.getToken) return reason === 'connect' ? this.token : null;
    // A token known to have expired is not worth a refused connection: ask for a new one.
    if (reason === 'connect' && this.token) reason = 'expiring';
    const t = await this.getToken({ reason });
    if (!t) return null;
    this.setToken(t);
    return t;
  }

  setToken(t) {
    this.token = t;
    this.scheduleRefresh(t);
  }

  /**
   * Asks `getToken` again shortly before the current token expires; a failed attempt (network
   * trouble, a refused token) is tried again while the current token still has time left.
   */
  scheduleRefresh(token) {
    clearTimeout(this.refreshTimer);
    this.refreshTimer = 0;
    const claims = decodeToken(token);
    if (!this.getToken || !claims) return;
    const left = claims.exp * 1000 - Date.now();
    if (left <= 0) return; // the next connect asks for a new one
    const lead = Math.min(this.opts.refreshBeforeMs, left / 2);
    const delay = Math.max(0, Math.min(left - lead, 2 ** 31 - 1));
    this.refreshTimer = setTimeout(() => {
      this.refreshToken().catch((e) => {
        this.emit('error', { type: 'error', code: e.code || 'refresh_failed', message: e.message });
        if (this.token !== token || this.conn.state === 'stopped') return;
        this.refreshTimer = setTimeout(() => this.scheduleRefresh(token), 1000);
      });
    }, delay);
  }

  /**
   * Gets a fresh token from `getToken` now and swaps it in on the live connection (the
   * `refresh` frame); resolves once the server confirmed it (`refreshed`), or at once when not
   * connected (the next connection uses it).
   */
  async refreshToken() {
    if (!this.getToken) throw new ClientError('no_get_token', 'refreshing needs the `getToken` option');
    const t = await this.getToken({ reason: 'expiring' });
    if (!t) throw new ClientError('no_token', 'getToken gave no token');
    if (!this.conn.isOpen) {
      this.setToken(t);
      return { expires_at: null };
    }
    if (this.refreshing) this.refreshing.reject(new ClientError('superseded', 'a newer refresh was sent'));
    return new Promise((resolve, reject) => {
      this.refreshing = { token: t, resolve, reject };
      this.conn.send({ type: 'refresh', token: t });
    });
  }

  // ---- rooms -----------------------------------------------------------------------------------

  /**
   * Joins a room, now and after every reconnect. `since`/`epoch` seed its position (e.g. saved
   * from an earlier session); without them the first subscribe starts at the room's newest seq
   * and later ones resume from what was received.
   */
  subscribe(conversationId, { since, epoch } = {}) {
    let room = this.roomsById.get(conversationId);
    const seeded = since !== undefined && since !== null;
    if (!room) {
      room = { seq: null, epoch: null, subscribed: false, awaiting: false, readSeq: 0, readSent: 0, lastTyping: 0 };
      this.roomsById.set(conversationId, room);
    } else if ((room.subscribed || room.awaiting) && !seeded) {
      return;
    }
    if (seeded) room.seq = Number(since);
    if (epoch !== undefined) room.epoch = epoch;
    if (this.conn.isOpen) this.sendSubscribe(conversationId, room);
  }

  /** Leaves a room (it is not resumed any more). */
  unsubscribe(conversationId) {
    if (!this.roomsById.delete(conversationId)) return;
    this.conn.send({ type: 'unsubscribe', conversation_id: conversationId });
  }

  /** The room's resume position, or null when not subscribed. */
  position(conversationId) {
    const r = this.roomsById.get(conversationId);
    return r ? { seq: r.seq, epoch: r.epoch, subscribed: r.subscribed } : null;
  }

  /** The ids of the rooms this client keeps subscribed. */
  rooms() {
    return [...this.roomsById.keys()];
  }

  sendSubscribe(id, room) {
    const frame = { type: 'subscribe', conversation_id: id };
    if (room.seq !== null) {
      frame.since = room.seq;
      if (room.epoch) frame.epoch = room.epoch;
    }
    room.awaiting = { since: frame.since };
    room.subscribed = false;
    this.conn.send(frame);
  }

  /** Follows the tenant's conversation list (operator and agent tokens), across reconnects. */
  watchConversations() {
    this.watching = true;
    this.conn.send({ type: 'watch_conversations' });
  }

  unwatchConversations() {
    this.watching = false;
    this.conn.send({ type: 'unwatch_conversations' });
  }

  // ---- sending ---------------------------------------------------------------------------------

  /**
   * Posts a message; resolves with its `ack` (`{conversation_id, client_id, seq, message_id,
   * duplicate, author_participant_id}`), rejects with a ClientError when the server refuses it
   * (`closed`, `forbidden`, …). Retried until then, across reconnects; the same `clientId`
   * never makes two messages. The returned promise has the `clientId`.
   * @returns {Promise<any> & {clientId: string}}
   */
  send(conversationId, { text = '', medias, clientId, visibility, via } = {}) {
    const id = clientId || newClientId();
    const existing = this.sends.get(id);
    if (existing) return existing.promise;
    const frame = { type: 'send', conversation_id: conversationId, text, client_id: id };
    if (medias && medias.length) frame.medias = medias;
    if (visibility) frame.visibility = visibility;
    if (via) frame.via = via;
    const entry = { frame, timer: 0, resolve: null, reject: null, promise: null };
    entry.promise = new Promise((resolve, reject) => {
      entry.resolve = resolve;
      entry.reject = reject;
    });
    entry.promise.clientId = id;
    this.sends.set(id, entry);
    this.transmit(entry);
    return entry.promise;
  }

  /** Client ids of the sends not acknowledged yet. */
  unacked() {
    return [...this.sends.keys()];
  }

  transmit(entry) {
    clearTimeout(entry.timer);
    entry.timer = 0;
    if (!this.conn.send(entry.frame)) return; // written again from onOpen
    entry.timer = setTimeout(() => {
      entry.timer = 0;
      if (this.sends.get(entry.frame.client_id) !== entry) return;
      this.conn.probe();
      this.transmit(entry);
    }, this.opts.ackTimeoutMs);
  }

  /** Typing indicator, at most once per `typingEveryMs` per room; false when not sent. */
  typing(conversationId) {
    const r = this.roomsById.get(conversationId);
    const t = Date.now();
    if (!r || !r.subscribed || t - r.lastTyping < this.opts.typingEveryMs) return false;
    r.lastTyping = t;
    return this.conn.send({ type: 'typing', conversation_id: conversationId });
  }

  /**
   * Read marker up to `seq` (only ever raised). Sent once subscribed; kept and sent after a
   * reconnect when the connection is down.
   */
  read(conversationId, seq) {
    const r = this.roomsById.get(conversationId);
    if (!r || !(seq > r.readSeq)) return false;
    r.readSeq = seq;
    this.flushRead(conversationId, r);
    return true;
  }

  flushRead(id, r) {
    if (r.subscribed && r.readSeq > r.readSent && this.conn.send({ type: 'read', conversation_id: id, seq: r.readSeq })) {
      r.readSent = r.readSeq;
    }
  }

  // ---- REST ------------------------------------------------------------------------------------

  /** One page of messages (`GET …/messages`), with the client's token. */
  history(conversationId, options) {
    return this.rest.history(conversationId, options);
  }

  /** Pages of messages going back from the newest (or `before`). */
  pages(conversationId, options) {
    return this.rest.pages(conversationId, options);
  }

  /** Uploads a file for `conversationId`; answers `{id, url, content_type, size, ...}`. */
  upload(file, options) {
    return this.rest.upload(file, options);
  }

  /** Any other REST call with the client's token. */
  request(method, path, body) {
    return this.rest.call(method, path, body);
  }

  // ---- frames ----------------------------------------------------------------------------------

  onState(state, detail) {
    if (state !== 'connected') {
      for (const r of this.roomsById.values()) {
        r.subscribed = false;
        r.awaiting = false;
      }
      for (const s of this.sends.values()) {
        clearTimeout(s.timer);
        s.timer = 0;
      }
      if (this.refreshing) {
        // The frame died with the connection; the token is still good for the next one.
        this.setToken(this.refreshing.token);
        this.refreshing.resolve({ expires_at: null });
        this.refreshing = null;
      }
    }
    this.emit('state', state, detail);
  }

  onOpen() {
    for (const [id, r] of this.roomsById) this.sendSubscribe(id, r);
    if (this.watching) this.conn.send({ type: 'watch_conversations' });
    for (const s of this.sends.values()) this.transmit(s);
    this.emit('open');
  }

  onFrame(f) {
    const handler = FRAMES[f.type];
    const emitted = handler ? handler.call(this, f) : f;
    if (emitted) this.emit(f.type, emitted);
    this.emit('frame', f);
  }
}
