// The page's state: rooms, their messages, pending sends, presence, typing and read markers.
//
// Plain data plus the few rules that keep it consistent (dedupe by message id, an optimistic
// send replaced by its acked message, unread counts from seq vs the read marker). Changes are
// coalesced and announced once per microtask as {list, conn, rooms: Set<roomId>}.

import { Saved } from './saved.js';

const TYPING_MS = 5000;

export function newRoom(id) {
  return {
    id,
    name: '',
    tmCreate: null,
    owner: null, // the owning agent's identity; null = unassigned
    status: 'open', // open | pending | snoozed | resolved | closed (final)
    messages: new Map(), // message id -> message
    sorted: null, // cached messages ascending by seq
    headSeq: 0, // highest seq known to exist in the room
    epoch: null, // the room's epoch from the last `subscribed` (the client keeps the resume position)
    loaded: false, // newest history page present
    hasMore: false, // older history exists on the server
    loadingOlder: false,
    historyGap: false, // history could not be recovered (shown as a note)
    subscribed: false,
    access: 'ok', // ok | denied | gone
    pending: new Map(), // client_id -> {clientId, text, medias, tm, state: sending|failed, error}
    participants: new Map(), // participant id -> participant (operator mode)
    names: new Map(), // participant id -> identity, learned from typing/read frames
    myPids: new Set(),
    myClientIds: new Set(),
    online: new Set(),
    typing: new Map(), // identity -> expiry (ms)
    reads: new Map(), // identity -> highest seq that identity read
    readSeq: 0, // my read marker
    serverUnread: null, // `unread_count` of the conversation object (staff), before history loads
    snoozedUntil: null,
    preview: null, // newest message announced by the list watch (rooms not streamed to us)
  };
}

export class Store {
  constructor({ mode, identity, role = null, name = '' }) {
    this.mode = mode; // operator (all staff) | user
    this.role = role; // staff: key (API key) | admin | agent (signed in with a password)
    this.identity = identity;
    this.name = name;
    this.filter = { tab: 'all', status: '', q: '', qIds: null }; // the list's tab, status and search
    this.counts = null; // the tabs' counts from the server ({mine, unassigned, all, capped}), staff only
    this.agents = new Map(); // identity -> agent {identity, name, online, …} (the picker's list)
    this.conn = 'connecting';
    this.notice = null; // {text, kind}
    this.rooms = new Map();
    this.activeId = null;
    this.nextPageToken = null;
    this.saved = new Saved(identity);
    this.listeners = new Set();
    this.dirty = { list: false, conn: false, rooms: new Set() };
    this.queued = false;
  }

  onChange(fn) {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /** Marks what changed; listeners run once at the end of the current task. */
  touch({ list = false, conn = false, room = null } = {}) {
    if (list) this.dirty.list = true;
    if (conn) this.dirty.conn = true;
    if (room) {
      this.dirty.rooms.add(room);
      this.dirty.list = true;
    }
    if (this.queued) return;
    this.queued = true;
    queueMicrotask(() => {
      this.queued = false;
      const d = this.dirty;
      this.dirty = { list: false, conn: false, rooms: new Set() };
      for (const fn of this.listeners) fn(d);
    });
  }

  room(id) {
    return this.rooms.get(id) || null;
  }

  ensureRoom(id) {
    let r = this.rooms.get(id);
    if (!r) {
      r = newRoom(id);
      r.readSeq = this.saved.loadNumber('read', id);
      for (const pid of this.saved.loadList('me', id)) r.myPids.add(pid);
      this.rooms.set(id, r);
      this.touch({ list: true });
    }
    return r;
  }

  upsertConversation(c) {
    const r = this.ensureRoom(c.id);
    r.name = c.name || '';
    r.tmCreate = c.tm_create || r.tmCreate;
    r.owner = c.owner_id || null;
    r.status = c.status || 'open';
    r.snoozedUntil = c.snoozed_until || null;
    r.headSeq = Math.max(r.headSeq, c.last_seq || 0);
    // Read state kept by the server per agent: the same in every browser.
    if (typeof c.last_read_seq === 'number') this.setReadSeq(r, c.last_read_seq);
    if (typeof c.unread_count === 'number') r.serverUnread = c.unread_count;
    this.touch({ room: r.id });
    return r;
  }

  /** From an `assigned` frame or an assign/unassign answer. */
  setOwner(roomId, owner) {
    const r = this.room(roomId);
    if (!r || r.owner === (owner || null)) return;
    r.owner = owner || null;
    this.touch({ room: r.id });
  }

  setConn(state) {
    this.conn = state;
    this.touch({ conn: true });
  }

  setNotice(text, kind = 'error') {
    this.notice = text ? { text, kind } : null;
    this.touch({ conn: true });
  }

  // ---- messages ----------------------------------------------------------------------------

  /**
   * Merges messages from the server (stream or history). Returns those not seen before.
   * `mine` marks the caller's own client ids' authors as "me".
   */
  addMessages(roomId, list) {
    const r = this.ensureRoom(roomId);
    const fresh = [];
    for (const m of list) {
      const had = r.messages.get(m.id);
      if (m.client_id && r.myClientIds.has(m.client_id) && m.author) this.rememberMe(r, m.author);
      if (m.client_id) r.pending.delete(m.client_id);
      r.messages.set(m.id, m);
      r.headSeq = Math.max(r.headSeq, m.seq);
      if (!had || had.synthetic) {
        if (!had) fresh.push(m);
        if (m.author) {
          const who = this.authorIdentity(r, m.author);
          if (who) r.typing.delete(who);
        }
      }
    }
    if (list.length) {
      r.sorted = null;
      this.touch({ room: r.id });
    }
    return fresh;
  }

  /** A message changed after it was sent (delivery status): same id, same seq. */
  updateMessage(roomId, m) {
    const r = this.room(roomId);
    if (!r || !r.messages.has(m.id)) return;
    r.messages.set(m.id, m);
    r.sorted = null;
    this.touch({ room: r.id });
  }

  /** Forgets the loaded history of a room (kept: pending sends) before a reload. */
  resetHistory(roomId) {
    const r = this.ensureRoom(roomId);
    r.messages.clear();
    r.sorted = null;
    r.loaded = false;
    r.hasMore = false;
    this.touch({ room: r.id });
  }

  sorted(r) {
    if (!r.sorted) r.sorted = [...r.messages.values()].sort((a, b) => a.seq - b.seq);
    return r.sorted;
  }

  lastMessage(r) {
    const s = this.sorted(r);
    return s.length ? s[s.length - 1] : null;
  }

  addPending(roomId, p) {
    const r = this.ensureRoom(roomId);
    r.pending.set(p.clientId, p);
    r.myClientIds.add(p.clientId);
    this.touch({ room: r.id });
  }

  /** The server accepted `client_id` as message `message_id` at `seq`. */
  ack(roomId, { client_id: clientId, message_id: id, seq }) {
    const r = this.room(roomId);
    if (!r || !clientId) return;
    const p = r.pending.get(clientId);
    r.pending.delete(clientId);
    if (p && !r.messages.has(id)) {
      // Stand-in until the real message frame arrives (same id, so it is replaced, never doubled).
      r.messages.set(id, {
        id,
        conversation_id: roomId,
        seq,
        author: null,
        direction: 'inbound',
        text: p.text,
        medias: p.medias,
        status: 'sent',
        client_id: clientId,
        tm_create: p.tm,
        visibility: p.visibility === 'internal' ? 'internal' : undefined,
        synthetic: true,
      });
      r.sorted = null;
    }
    r.headSeq = Math.max(r.headSeq, seq);
    this.touch({ room: r.id });
  }

  failPending(roomId, clientId, error) {
    const r = this.room(roomId);
    const p = r && r.pending.get(clientId);
    if (!p) return;
    p.state = 'failed';
    p.error = error;
    this.touch({ room: r.id });
  }

  // ---- people --------------------------------------------------------------------------------

  rememberMe(r, pid) {
    if (r.myPids.has(pid)) return;
    r.myPids.add(pid);
    this.saved.saveList('me', r.id, [...r.myPids]);
  }

  setParticipants(roomId, list) {
    const r = this.ensureRoom(roomId);
    r.participants = new Map(list.map((p) => [p.id, p]));
    for (const p of list) {
      if (p.address.type !== 'webchat') continue;
      if (p.address.target === this.identity) {
        this.rememberMe(r, p.id);
        this.setReadSeq(r, p.last_read_seq);
      } else if (p.last_read_seq) {
        r.reads.set(p.address.target, Math.max(r.reads.get(p.address.target) || 0, p.last_read_seq));
      }
    }
    this.touch({ room: r.id });
  }

  isMine(r, m) {
    return !!(m.synthetic || (m.author && r.myPids.has(m.author)) || (m.client_id && r.myClientIds.has(m.client_id)));
  }

  authorIdentity(r, pid) {
    const p = r.participants.get(pid);
    if (p) return p.address.type === 'webchat' ? p.address.target : null;
    return r.names.get(pid) || null;
  }

  /** Display name for a message's author. */
  authorName(r, m) {
    if (this.isMine(r, m)) return 'You';
    // An end user's token sees neither participants nor identities' display names: everyone
    // else is "Support" — never a raw sign-in identity (learned from typing/read frames), and
    // the same in old history and live messages.
    if (this.mode === 'user') return 'Support';
    if (!m.author) return 'API';
    const p = r.participants.get(m.author);
    if (p) return p.address.name || p.address.target;
    return r.names.get(m.author) || (this.mode === 'user' ? 'Agent' : 'Participant');
  }

  /** A participant who is staff (an agent, me, a known agent's identity), not a customer. */
  isStaff(r, p) {
    const a = p.address;
    if (a.type === 'agent' || r.myPids.has(p.id)) return true;
    return a.type === 'webchat' && (a.target === this.identity || this.agents.has(a.target));
  }

  /**
   * Channel types of the room's customers: webchat, tel, line, whatsapp, telegram. Staff who
   * joined to reply (an operator joins as `webchat`) do not make an SMS room a chat.
   */
  channels(r) {
    const set = new Set();
    for (const p of r.participants.values()) if (!this.isStaff(r, p)) set.add(p.address.type);
    return set;
  }

  /** The first customer's display name or address ('' when none is known). */
  customerName(r) {
    for (const p of r.participants.values()) if (!this.isStaff(r, p)) return p.address.name || p.address.target;
    return '';
  }

  learnName(r, pid, identity) {
    if (!pid || !identity) return;
    if (identity === this.identity) this.rememberMe(r, pid);
    else r.names.set(pid, identity);
  }

  setTyping(roomId, identity) {
    const r = this.room(roomId);
    if (!r || identity === this.identity) return;
    r.typing.set(identity, Date.now() + TYPING_MS);
    this.touch({ room: r.id });
    setTimeout(() => this.touch({ room: r.id }), TYPING_MS + 50);
  }

  typingNow(r) {
    const now = Date.now();
    return [...r.typing.entries()].filter(([, until]) => until > now).map(([who]) => who);
  }

  setPresence(roomId, identity, state) {
    const r = this.room(roomId);
    if (!r) return;
    if (state === 'joined') r.online.add(identity);
    else r.online.delete(identity);
    this.touch({ room: r.id });
  }

  // ---- read markers ----------------------------------------------------------------------------

  setReadSeq(r, seq) {
    if (!(seq > r.readSeq)) return false;
    r.readSeq = seq;
    this.saved.saveNumber('read', r.id, seq);
    this.touch({ room: r.id });
    return true;
  }

  setPeerRead(roomId, identity, seq) {
    const r = this.room(roomId);
    if (!r) return;
    if (identity === this.identity) {
      this.setReadSeq(r, seq);
      return;
    }
    if (seq > (r.reads.get(identity) || 0)) {
      r.reads.set(identity, seq);
      this.touch({ room: r.id });
    }
  }

  /** Highest seq any other identity has read (for "read" status on my bubbles). */
  peerReadSeq(r) {
    let max = 0;
    for (const s of r.reads.values()) max = Math.max(max, s);
    return max;
  }

  /** Messages of others above my read marker (an estimate beyond the loaded history). */
  unread(r) {
    let n = 0;
    let oldest = Infinity;
    for (const m of r.messages.values()) {
      oldest = Math.min(oldest, m.seq);
      if (m.seq > r.readSeq && !this.isMine(r, m)) n += 1;
    }
    if (r.hasMore && oldest !== Infinity && r.readSeq < oldest - 1) n += oldest - 1 - r.readSeq;
    if (!r.loaded && r.messages.size === 0) n = r.serverUnread !== null ? r.serverUnread : Math.max(0, r.headSeq - r.readSeq);
    return n;
  }
}
