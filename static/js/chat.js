// The controller: wires the REST client, the socket and the store, and turns user actions and
// server frames into state changes.
//
// Resume rule: every subscribed room is (re)subscribed with `since` = the highest seq received
// from the server's ordered stream and the room's `epoch`. `recovered: false` after a `since`
// means the gap could not be replayed: an operator reloads the newest history page over REST;
// an end user (no REST access) resubscribes from seq 0 once.

import { socketUrl } from './api.js';
import { Directory } from './directory.js';
import { Socket } from './socket.js';

const HISTORY_PAGE = 30;
/**
 * Fallback only: the list is live over the socket (`watch_conversations`). Polled this often
 * while connected to a server that does not confirm the watch with `watching`.
 */
const LIST_POLL_MS = 60000;
/** Below the server's `ws.max_subscriptions` (100 by default). */
export const MAX_SUBSCRIPTIONS = 90;
const TYPING_EVERY_MS = 2500;

export function newClientId() {
  if (globalThis.crypto && typeof crypto.randomUUID === 'function') return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = [...b].map((x) => x.toString(16).padStart(2, '0')).join('');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

export class Chat {
  /**
   * @param {object} o
   * @param {import('./store.js').Store} o.store
   * @param {import('./api.js').Api|null} o.api present in operator mode
   * @param {import('./api.js').Api|null} [o.reader] end-user mode: REST with the client token,
   *   which may read only the messages of its conversations (history pages)
   * @param {string} o.token client token
   * @param {string[]} [o.conversationIds] end-user mode: the token's conversations
   * @param {(text: string) => void} o.announce screen-reader announcement
   */
  constructor({ store, api, reader, token, expiresAt, conversationIds, announce }) {
    this.store = store;
    this.api = api;
    /** History pages over REST: the operator's API key, or the end user's client token. */
    this.reader = api || reader || null;
    this.token = token;
    this.refreshTimer = 0;
    /** Operator-only REST actions (conversation list, participants, invites). */
    this.directory = api ? new Directory(this) : null;
    this.announce = announce;
    this.sentSince = new Map(); // room -> since sent with the pending subscribe
    this.reloadedFromZero = new Set();
    this.participantsLoading = new Map();
    this.lastTyping = 0;
    this.pollTimer = 0;
    this.watchLive = false; // the server confirmed `watch_conversations` on this connection
    for (const id of conversationIds || []) store.ensureRoom(id);
    this.scheduleRenewal(expiresAt);
    this.socket = new Socket({
      getUrl: (refresh) => this.tokenUrl(refresh),
      onOpen: () => this.onOpen(),
      onFrame: (f) => this.onFrame(f),
      onState: (s) => {
        if (s !== 'connected') {
          this.watchLive = false;
          for (const r of this.store.rooms.values()) r.subscribed = false;
        }
        this.store.setConn(s);
      },
    });
  }

  get operator() {
    return this.store.mode === 'operator';
  }

  async start() {
    const dir = this.directory;
    if (dir) await dir.refresh();
    this.socket.start();
    if (dir) {
      this.pollTimer = setInterval(() => {
        if (this.socket.isOpen && !this.watchLive) dir.refresh();
      }, LIST_POLL_MS);
    }
  }

  stop() {
    clearInterval(this.pollTimer);
    clearTimeout(this.refreshTimer);
    this.socket.stop();
  }

  async tokenUrl(refresh) {
    if (refresh) {
      if (!this.api) return null;
      await this.renewToken();
    }
    return { url: socketUrl(), token: this.token };
  }

  /** Operator tokens are renewed a minute before they expire, on the live connection too. */
  scheduleRenewal(expiresAt) {
    clearTimeout(this.refreshTimer);
    if (!this.api || !expiresAt) return;
    const inMs = Math.max(5000, new Date(expiresAt).getTime() - Date.now() - 60000);
    this.refreshTimer = setTimeout(() => {
      this.renewToken()
        .then(() => this.socket.send({ type: 'refresh', token: this.token }))
        .catch(() => this.scheduleRenewal(new Date(Date.now() + 65000).toISOString()));
    }, Math.min(inMs, 2 ** 31 - 1));
  }

  async renewToken() {
    const t = await this.api.mintOperatorToken(this.store.identity);
    this.token = t.token;
    this.scheduleRenewal(t.expires_at);
  }

  // ---- socket --------------------------------------------------------------------------------

  onOpen() {
    // Operators follow the whole list: `watching` (reload it), then `conversation` frames.
    if (this.directory) this.socket.send({ type: 'watch_conversations' });
    const rooms = [...this.store.rooms.values()];
    const active = this.store.activeId;
    rooms.sort((a, b) => (b.id === active) - (a.id === active));
    for (const r of rooms.slice(0, MAX_SUBSCRIPTIONS)) this.subscribe(r);
  }

  subscribe(r) {
    if (r.access !== 'ok') return;
    r.subscribed = false;
    const frame = { type: 'subscribe', conversation_id: r.id };
    // Operators resume only rooms whose newest page is loaded; end users always replay.
    if (!this.operator || r.loaded) {
      frame.since = r.resumeSeq;
      if (r.epoch) frame.epoch = r.epoch;
    }
    this.sentSince.set(r.id, frame.since);
    this.socket.send(frame);
  }

  onFrame(f) {
    const s = this.store;
    const id = f.conversation_id;
    switch (f.type) {
      case 'subscribed':
        return this.onSubscribed(f);
      case 'message':
        return this.onMessage(f.message);
      case 'message_updated':
        s.updateMessage(f.message.conversation_id, f.message);
        return undefined;
      case 'ack': {
        s.ack(id, f);
        const r = s.room(id);
        if (r && f.author_participant_id) s.rememberMe(r, f.author_participant_id);
        // An operator joins a room on its first send: show it among the participants.
        if (r && this.operator && !f.duplicate && ![...r.participants.values()].some((p) => r.myPids.has(p.id))) {
          this.loadParticipants(r, true);
        }
        return undefined;
      }
      case 'typing': {
        const r = s.room(id);
        if (r) s.learnName(r, f.participant_id, f.identity);
        s.setTyping(id, f.identity);
        return undefined;
      }
      case 'read': {
        const r = s.room(id);
        if (r) s.learnName(r, f.participant_id, f.identity);
        s.setPeerRead(id, f.identity, f.seq);
        return undefined;
      }
      case 'presence':
        s.setPresence(id, f.identity, f.state);
        return undefined;
      case 'assigned': {
        s.setOwner(id, f.owner_id);
        const r = s.room(id);
        if (r && id === s.activeId) this.announce(f.owner_id ? `Assigned to ${f.owner_id}` : 'Unassigned');
        return undefined;
      }
      case 'unsubscribed': {
        const r = s.room(id);
        if (r) {
          r.subscribed = false;
          s.touch({ room: id });
        }
        return undefined;
      }
      case 'error':
        return this.onError(f);
      case 'refreshed':
      case 'unwatched':
        return undefined;
      case 'watching':
        // Live from here on; whatever changed before (or while disconnected) comes from REST.
        this.watchLive = true;
        if (this.directory) this.directory.refresh(true);
        return undefined;
      case 'conversation':
        if (this.directory) this.directory.apply(f);
        return undefined;
      default:
        return undefined;
    }
  }

  onSubscribed(f) {
    const s = this.store;
    const r = s.room(f.conversation_id);
    if (!r) return;
    const since = this.sentSince.get(r.id);
    this.sentSince.delete(r.id);
    const epochChanged = r.epoch !== null && r.epoch !== f.epoch;
    r.subscribed = true;
    r.epoch = f.epoch;
    r.headSeq = Math.max(r.headSeq, f.seq);
    r.online = new Set(f.online);
    // Which messages are mine and how far I read, also in a browser that has never been here.
    if (f.participant_id) s.rememberMe(r, f.participant_id);
    if (f.last_read_seq) s.setReadSeq(r, f.last_read_seq);
    s.touch({ room: r.id });
    if (since !== undefined && !f.recovered) {
      if (this.operator || this.reader) {
        // Replay not possible (gap beyond the server's recovery window, or history lost):
        // the newest page over REST, older ones by scrolling back.
        s.resetHistory(r.id);
        this.loadLatest(r);
      } else if (since > 0 && !this.reloadedFromZero.has(r.id)) {
        // Replay not possible (gap too large or history lost): start over from the beginning.
        this.reloadedFromZero.add(r.id);
        s.resetHistory(r.id);
        this.sentSince.set(r.id, 0);
        this.socket.send({ type: 'subscribe', conversation_id: r.id, since: 0, epoch: f.epoch });
        return;
      } else if (f.seq > 0) {
        r.historyGap = true;
      }
    } else if (since === undefined && !r.loaded) {
      this.loadLatest(r);
    }
    if (since !== undefined && f.recovered) {
      this.reloadedFromZero.delete(r.id);
      r.loaded = true;
      if (epochChanged) r.historyGap = false;
    }
    if (this.operator && !r.participants.size) this.loadParticipants(r);
    this.flushPending(r);
  }

  onMessage(m) {
    const s = this.store;
    const r = s.room(m.conversation_id);
    if (!r) return;
    const fresh = s.addMessages(r.id, [m]);
    if (!fresh.length || s.isMine(r, m)) return;
    if (m.author && !r.participants.has(m.author) && this.operator) this.loadParticipants(r, true);
    const where = r.id === s.activeId ? '' : ` in ${r.name || 'another conversation'}`;
    this.announce(`${s.authorName(r, m)}${where}: ${m.text || 'sent an attachment'}`);
  }

  onError(f) {
    const s = this.store;
    const r = f.conversation_id ? s.room(f.conversation_id) : null;
    if (f.client_id && r) {
      s.failPending(r.id, f.client_id, f.message);
      return;
    }
    if (r && (f.code === 'forbidden' || f.code === 'not_found')) {
      r.access = f.code === 'forbidden' ? 'denied' : 'gone';
      r.subscribed = false;
      s.touch({ room: r.id });
      return;
    }
    s.setNotice(f.message || f.code);
  }

  // ---- history -------------------------------------------------------------------------------

  async loadLatest(r) {
    if (!this.reader) return;
    try {
      const page = await this.reader.history(r.id, { pageSize: HISTORY_PAGE });
      this.store.addMessages(r.id, page.result);
      r.hasMore = page.has_more;
      r.loaded = true;
      r.historyGap = false;
      this.store.touch({ room: r.id });
    } catch (e) {
      this.store.setNotice(`Could not load history: ${e.message}`);
    }
  }

  /** Infinite scroll: the page of messages just before the oldest one loaded. */
  async loadOlder(roomId) {
    const r = this.store.room(roomId);
    if (!r || !this.reader || !r.hasMore || r.loadingOlder) return false;
    const oldest = this.store.sorted(r).find((m) => !m.synthetic);
    if (!oldest) return false;
    r.loadingOlder = true;
    this.store.touch({ room: r.id });
    try {
      const page = await this.reader.history(r.id, { before: oldest.seq, pageSize: HISTORY_PAGE });
      this.store.addMessages(r.id, page.result);
      r.hasMore = page.has_more;
      return true;
    } catch (e) {
      this.store.setNotice(`Could not load older messages: ${e.message}`);
      return false;
    } finally {
      r.loadingOlder = false;
      this.store.touch({ room: r.id });
    }
  }

  loadParticipants(r, force = false) {
    if (!this.api) return Promise.resolve();
    if (this.participantsLoading.has(r.id)) return this.participantsLoading.get(r.id);
    if (!force && r.participants.size) return Promise.resolve();
    const p = this.api
      .participants(r.id)
      .then((res) => this.store.setParticipants(r.id, res.result))
      .catch(() => {})
      .finally(() => this.participantsLoading.delete(r.id));
    this.participantsLoading.set(r.id, p);
    return p;
  }

  // ---- user actions ----------------------------------------------------------------------------

  canSubscribe() {
    let n = 0;
    for (const r of this.store.rooms.values()) if (r.subscribed || this.sentSince.has(r.id)) n += 1;
    return n < MAX_SUBSCRIPTIONS;
  }

  open(roomId) {
    const s = this.store;
    s.activeId = roomId;
    const r = s.room(roomId);
    if (r && !r.subscribed && this.socket.isOpen && !this.sentSince.has(r.id)) this.subscribe(r);
    s.touch({ list: true, room: roomId });
  }

  send(roomId, text, medias = []) {
    const body = text.trim();
    if (!body && !medias.length) return;
    const p = { clientId: newClientId(), text: body, medias, tm: new Date().toISOString(), state: 'sending' };
    this.store.addPending(roomId, p);
    this.transmit(roomId, p);
  }

  retry(roomId, clientId) {
    const r = this.store.room(roomId);
    const p = r && r.pending.get(clientId);
    if (!p) return;
    p.state = 'sending';
    p.error = '';
    this.store.touch({ room: roomId });
    this.transmit(roomId, p);
  }

  transmit(roomId, p) {
    const r = this.store.room(roomId);
    if (!r || !r.subscribed) return; // sent from flushPending once subscribed
    const frame = { type: 'send', conversation_id: roomId, text: p.text, client_id: p.clientId };
    if (p.medias.length) frame.medias = p.medias;
    this.socket.send(frame);
  }

  /** Re-sends what was not acknowledged; the same client_id makes a repeat harmless. */
  flushPending(r) {
    for (const p of r.pending.values()) if (p.state === 'sending') this.transmit(r.id, p);
  }

  typing(roomId) {
    const now = Date.now();
    if (now - this.lastTyping < TYPING_EVERY_MS) return;
    const r = this.store.room(roomId);
    if (!r || !r.subscribed) return;
    this.lastTyping = now;
    this.socket.send({ type: 'typing', conversation_id: roomId });
  }

  /** Called when messages up to `seq` were on screen. */
  markRead(roomId, seq) {
    const r = this.store.room(roomId);
    if (!r || !this.store.setReadSeq(r, seq)) return;
    if (r.subscribed) this.socket.send({ type: 'read', conversation_id: roomId, seq });
  }
}
