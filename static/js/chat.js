// The controller: wires the JS client (@switchboard/client, served at /sdk/), the operator's
// REST calls and the store, and turns user actions and server events into state changes.
//
// The protocol itself — connecting with the token in the first frame, resuming each room with
// `since`/`epoch`, retrying sends until their ack, throttling typing, keeping read markers,
// reconnecting with backoff, refreshing the token — is the client's; this file only decides
// what the page shows. Operators subscribe rooms without a position (the newest page comes over
// REST); end users start from seq 0 (the whole conversation is replayed). A `subscribed` with
// `gap` (the resume could not be replayed) reloads the newest page over REST.

import { newClientId, SwitchboardClient } from '/sdk/index.js';
import { Directory } from './directory.js';

export { newClientId };

const HISTORY_PAGE = 30;
/**
 * Fallback only: the list is live over the socket (`watch_conversations`). Polled this often
 * while connected to a server that does not confirm the watch with `watching`.
 */
const LIST_POLL_MS = 60000;
/** How often the agent picker's presence is refreshed. */
const AGENTS_POLL_MS = 30000;
/** Below the server's `ws.max_subscriptions` (100 by default). */
export const MAX_SUBSCRIPTIONS = 90;

export class Chat {
  /**
   * @param {object} o
   * @param {import('./store.js').Store} o.store
   * @param {import('./api.js').Api|null} o.api present for staff (API key or signed-in agent)
   * @param {string} o.token client token (operator, agent or end user)
   * @param {(o: {reason: string}) => Promise<string>} [o.getToken] staff: a fresh token
   * @param {string[]} [o.conversationIds] end-user mode: the token's conversations
   * @param {(text: string) => void} o.announce screen-reader announcement
   */
  constructor({ store, api, token, getToken, conversationIds, announce }) {
    this.store = store;
    this.api = api;
    /** Operator-only REST actions (conversation list, participants, invites). */
    this.directory = api ? new Directory(this) : null;
    this.announce = announce;
    this.participantsLoading = new Map();
    this.pollTimer = 0;
    this.watchLive = false; // the server confirmed `watch_conversations` on this connection
    this.client = new SwitchboardClient({
      token,
      // Staff get a new token ahead of expiry or after a refusal (minted with the API key, or
      // renewed with the session's refresh token); an end user's link cannot be renewed: the
      // page then shows the link as expired.
      getToken,
    });
    for (const id of conversationIds || []) {
      store.ensureRoom(id);
      this.client.subscribe(id, { since: 0 });
    }
    const c = this.client;
    c.on('state', (s) => {
      if (s !== 'connected') {
        this.watchLive = false;
        for (const r of this.store.rooms.values()) r.subscribed = false;
      }
      this.store.setConn(s === 'idle' ? 'connecting' : s);
    });
    c.on('subscribed', (f) => this.onSubscribed(f));
    c.on('message', (m) => this.onMessage(m));
    c.on('frame', (f) => this.onFrame(f));
  }

  get operator() {
    return this.store.mode === 'operator';
  }

  async start() {
    const dir = this.directory;
    if (dir) {
      await dir.refresh();
      this.client.watchConversations();
      const rooms = [...this.store.rooms.values()];
      const active = this.store.activeId;
      rooms.sort((a, b) => (b.id === active) - (a.id === active));
      for (const r of rooms.slice(0, MAX_SUBSCRIPTIONS)) this.subscribe(r);
    }
    this.client.connect();
    if (dir) {
      this.pollTimer = setInterval(() => {
        if (this.client.connected && !this.watchLive) dir.refresh();
      }, LIST_POLL_MS);
      // The picker's presence dots: agents come and go without a frame to this page.
      dir.loadAgents().catch(() => {});
      this.agentsTimer = setInterval(() => {
        if (document.visibilityState === 'visible') dir.loadAgents().catch(() => {});
      }, AGENTS_POLL_MS);
    }
  }

  stop() {
    clearInterval(this.pollTimer);
    clearInterval(this.agentsTimer);
    this.client.close();
  }

  /** Keeps `r` subscribed (now and after reconnects). */
  subscribe(r) {
    if (r.access !== 'ok') return;
    this.client.subscribe(r.id);
  }

  /** Frames the client passes on as they are (its own bookkeeping done). */
  onFrame(f) {
    const s = this.store;
    const id = f.conversation_id;
    switch (f.type) {
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
        if (this.directory) this.directory.refreshCounts();
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
    const epochChanged = r.epoch !== null && r.epoch !== f.epoch;
    r.subscribed = true;
    r.epoch = f.epoch;
    r.headSeq = Math.max(r.headSeq, f.seq);
    r.online = new Set(f.online);
    // Which messages are mine and how far I read, also in a browser that has never been here.
    if (f.participant_id) s.rememberMe(r, f.participant_id);
    if (f.last_read_seq) s.setReadSeq(r, f.last_read_seq);
    s.touch({ room: r.id });
    if (f.gap) {
      // Replay not possible (gap beyond the server's recovery window, or history lost): the
      // newest page over REST, older ones by scrolling back.
      s.resetHistory(r.id);
      this.loadLatest(r);
    } else if (f.resumed && (r.loaded || f.since === 0)) {
      // Everything since the position was replayed: the loaded history is complete again (from
      // seq 0, an end user's first subscribe, it is the whole conversation).
      r.loaded = true;
      if (epochChanged) r.historyGap = false;
    } else if (!r.loaded) {
      // Subscribed without a position, or resumed before the newest page ever loaded.
      this.loadLatest(r);
    }
    if (this.operator && !r.participants.size) this.loadParticipants(r);
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
    // A refused send rejects its promise (see `send`).
    if (f.client_id) return;
    const s = this.store;
    const r = f.conversation_id ? s.room(f.conversation_id) : null;
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
    try {
      const page = await this.client.history(r.id, { pageSize: HISTORY_PAGE });
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
    if (!r || !r.hasMore || r.loadingOlder) return false;
    const oldest = this.store.sorted(r).find((m) => !m.synthetic);
    if (!oldest) return false;
    r.loadingOlder = true;
    this.store.touch({ room: r.id });
    try {
      const page = await this.client.history(r.id, { before: oldest.seq, pageSize: HISTORY_PAGE });
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
    return this.client.rooms().length < MAX_SUBSCRIPTIONS;
  }

  open(roomId) {
    const s = this.store;
    s.activeId = roomId;
    const r = s.room(roomId);
    if (r) this.subscribe(r);
    s.touch({ list: true, room: roomId });
  }

  /** `visibility: 'internal'`: a private note (staff only, never sent over a channel). */
  send(roomId, text, medias = [], visibility = 'public') {
    const body = text.trim();
    if (!body && !medias.length) return;
    const p = { clientId: newClientId(), text: body, medias, visibility, tm: new Date().toISOString(), state: 'sending' };
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

  /** The client retries until the ack (same client_id: never stored twice); a refusal fails it. */
  transmit(roomId, p) {
    this.client
      .send(roomId, {
        text: p.text,
        medias: p.medias.map((m) => (m.id ? { media_id: m.id } : m)),
        clientId: p.clientId,
        visibility: p.visibility === 'internal' ? 'internal' : undefined,
      })
      .catch((e) => this.store.failPending(roomId, p.clientId, e.message));
  }

  typing(roomId) {
    this.client.typing(roomId);
  }

  /** Called when messages up to `seq` were on screen. */
  markRead(roomId, seq) {
    const r = this.store.room(roomId);
    if (!r || !this.store.setReadSeq(r, seq)) return;
    this.client.read(roomId, seq);
  }
}
