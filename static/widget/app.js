// The widget's behaviour: the visitor's session with the hub and the chat, on top of the JS
// client (/sdk/: connect, subscribe with resume, acked sends, typing, read, history, uploads,
// token refresh) — this file has no protocol code of its own. What it adds is the widget's
// two REST calls (docs/widget.md):
//   POST /v1.0/widget/sessions  who the visitor is; visitor token (kept in localStorage),
//                               client token, branding, pre-chat form, agents online
//   POST /v1.0/widget/messages  a message that opens the room: the first one, or one after
//                               the conversation ended; answers a token that includes the room
// Every later message goes over the WebSocket through the client.

import { SwitchboardClient } from '../sdk/index.js';
import { Panel } from './ui.js';

const ENDED = new Set(['resolved', 'closed']);

class Widget {
  constructor(o) {
    this.o = o;
    this.storeKey = `switchboard.widget.${o.key}`;
    this.session = null;
    this.room = null;
    this.status = null;
    this.people = new Map();
    this.lastSeq = 0;
  }

  /** POST /v1.0/widget/<path>?key=… with the key (the query lets the CORS preflight find the account). */
  async call(path, body) {
    const res = await fetch(`${this.o.hub}/v1.0/widget/${path}?key=${encodeURIComponent(this.o.key)}`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ key: this.o.key, ...body }),
    });
    const data = await res.json().catch(() => null);
    if (!res.ok) {
      const e = new Error(data?.error?.message || `HTTP ${res.status}`);
      e.status = res.status;
      e.code = data?.error?.code;
      throw e;
    }
    return data;
  }

  /** Opens (or renews) the session; keeps the visitor token. */
  async openSession(extra = {}) {
    let visitorToken = null;
    try {
      visitorToken = localStorage.getItem(this.storeKey);
    } catch {}
    const body = { visitor_token: visitorToken, ...extra };
    if (this.o.identifier) Object.assign(body, { identifier: this.o.identifier, identifier_hash: this.o.identifierHash });
    if (this.o.name && !body.name) body.name = this.o.name;
    if (this.o.email && !body.email) body.email = this.o.email;
    let s;
    try {
      s = await this.call('sessions', body);
    } catch (e) {
      // A stale or foreign visitor token: start over as a new visitor (an identity error stands).
      if (e.status !== 401 || !visitorToken) throw e;
      try { localStorage.removeItem(this.storeKey); } catch {}
      s = await this.call('sessions', { ...body, visitor_token: null });
    }
    // A known user's token is not kept for whoever uses this browser next without logging in.
    if (s.verified && !this.o.identifier) {
      try { localStorage.removeItem(this.storeKey); } catch {}
      return this.openSession(extra);
    }
    try {
      localStorage.setItem(this.storeKey, s.visitor_token);
    } catch {}
    this.session = s;
    this.learn(s.conversation);
    return s;
  }

  /** Takes in the conversation a session or first message answered. */
  learn(c) {
    if (!c) return;
    for (const p of c.people || []) this.people.set(p.participant_id, p);
    this.status = c.status;
    if (this.room !== c.id) {
      if (this.room) this.client?.unsubscribe(this.room);
      this.room = c.id;
      this.lastSeq = 0;
    }
  }

  async start() {
    let s;
    try {
      s = await this.openSession();
    } catch (e) {
      console.warn(`Switchboard widget: ${e.message}`);
      this.failed = e;
      return this;
    }
    this.ui = new Panel(s.branding, {
      send: (text) => this.send({ text }),
      files: (files) => this.sendFiles(files),
      opened: () => this.markRead(),
      typing: () => this.room && !ENDED.has(this.status) && this.client.typing(this.room),
    });
    this.ui.showNotice(s.agents_online ? '' : "We're offline right now. Leave a message and we'll get back to you.");
    this.client = new SwitchboardClient({
      url: this.o.hub,
      token: s.token,
      // Reconnects and refreshes: the pending room token first, else a renewed session.
      getToken: async () => {
        if (this.nextToken) {
          const t = this.nextToken;
          this.nextToken = null;
          return t;
        }
        return (await this.openSession()).token;
      },
    });
    this.client.on('message', (m) => this.show(m));
    this.client.on('message_updated', (m) => this.show(m));
    this.client.on('subscribed', (f) => { if (f.gap) this.loadHistory(); });
    this.client.on('typing', (f) => this.typing(f));
    this.client.on('read', (f) => this.read(f));
    this.client.on('error', (f) => { if (f.code === 'closed') this.end(); });
    // The room's `status` frame: resolved or closed while the visitor watches.
    this.client.on('frame', (f) => { if (f.type === 'status' && f.conversation_id === this.room) this.setStatus(f.status); });
    this.client.connect();
    if (this.room) await this.join();
    if (ENDED.has(this.status)) this.ui.ended(true);
    this.prechatDone = !this.needsPrechat(s);
    if (this.o.open) this.ui.open();
    return this;
  }

  needsPrechat(s) {
    if (this.room || this.o.identifier) return false;
    const p = s.prechat || {};
    return p.name === 'required' || p.email === 'required' || p.name === 'optional' || p.email === 'optional';
  }

  async join() {
    await this.loadHistory();
    this.client.subscribe(this.room, this.lastSeq ? { since: this.lastSeq } : undefined);
  }

  async loadHistory() {
    const page = await this.client.history(this.room, { pageSize: 50 });
    for (const m of page.result) this.show(m);
  }

  /** The name and avatar of a message's author, by participant id (never an identity). */
  async who(participantId) {
    if (!participantId) return { name: this.session.branding.name || 'Team', avatar_url: this.session.branding.avatar_url };
    if (!this.people.has(participantId)) {
      const s = await this.openSession().catch(() => null);
      if (s && !this.people.has(participantId)) this.people.set(participantId, { kind: 'team', name: s.branding.name || 'Team' });
    }
    return this.people.get(participantId) || { kind: 'team', name: 'Team' };
  }

  async show(m) {
    if (m.conversation_id !== this.room || m.visibility === 'internal') return;
    const person = m.author ? await this.who(m.author) : null;
    const mine = person?.kind === 'visitor';
    this.ui.upsert(m, mine ? null : await this.who(m.author), mine);
    if (m.seq > this.lastSeq) this.lastSeq = m.seq;
    if (!mine) {
      this.ui.setTyping(null);
      if (this.ui.isOpen) this.markRead();
    }
  }

  markRead() {
    if (this.room && this.lastSeq && !ENDED.has(this.status)) this.client.read(this.room, this.lastSeq);
  }

  typing(f) {
    if (f.conversation_id !== this.room) return;
    const p = this.people.get(f.participant_id);
    if (p?.kind === 'visitor') return;
    this.ui.setTyping(p?.name || 'Someone');
    clearTimeout(this.typingTimer);
    this.typingTimer = setTimeout(() => this.ui.setTyping(null), 4000);
  }

  read(f) {
    if (f.conversation_id !== this.room) return;
    if (this.people.get(f.participant_id)?.kind === 'visitor') return;
    this.ui.markRead(f.seq);
  }

  end() {
    this.setStatus('closed');
  }

  setStatus(status) {
    this.status = status;
    this.ui.ended(ENDED.has(status));
  }

  /** Sends over the WebSocket, or through /widget/messages when there is no open room. */
  async send(message) {
    this.ui.showError('');
    try {
      if (!this.prechatDone) {
        const known = { name: this.session.contact?.name, email: this.session.contact?.email };
        const answers = await this.ui.askPrechat(this.session.prechat, known);
        await this.openSession(answers);
        this.prechatDone = true;
      }
      if (!this.room || ENDED.has(this.status)) {
        const r = await this.call('messages', { visitor_token: this.session.visitor_token, ...message });
        this.learn(r.conversation);
        this.ui.ended(false);
        this.nextToken = r.token;
        await this.client.refreshToken();
        await this.show(r.message);
        this.client.subscribe(this.room, { since: this.lastSeq });
        return r.message;
      }
      const ack = await this.client.send(this.room, message);
      return ack;
    } catch (e) {
      if (e.code === 'closed') {
        this.end();
        return this.send(message);
      }
      this.ui.showError(`Not sent: ${e.message}`);
      throw e;
    }
  }

  async sendFiles(files) {
    for (const file of files) {
      try {
        if (!this.room || ENDED.has(this.status)) await this.send({ text: `📎 ${file.name}` });
        const media = await this.client.upload(file, { conversationId: this.room, filename: file.name });
        await this.send({ medias: [{ media_id: media.id }] });
      } catch (e) {
        this.ui.showError(`${file.name} not sent: ${e.message}`);
      }
    }
  }
}

/** Starts the widget; the returned object is also `window.SwitchboardWidget`. */
export function start(options) {
  const w = new Widget(options);
  w.ready = w.start();
  return w;
}
