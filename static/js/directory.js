// Operator-only actions: the conversation list (the first page over REST whenever the socket's
// watch says `watching`, then live `conversation` frames; further pages on demand), creating a
// conversation, adding participants, joining, and minting end-user invite links.

const LIST_PAGE = 30;

export class Directory {
  /** @param {import('./chat.js').Chat} chat */
  constructor(chat) {
    this.chat = chat;
    this.api = chat.api;
    this.store = chat.store;
  }

  /**
   * The newest page: new rooms appear (and are subscribed) without a reload. `force`: also in a
   * hidden tab (after `watching`, when changes may have been missed).
   */
  async refresh(force = false) {
    if (!force && this.listed && document.visibilityState === 'hidden') return;
    try {
      const page = await this.api.listConversations({ pageSize: LIST_PAGE });
      this.add(page.result);
      if (this.store.nextPageToken === null) this.store.nextPageToken = page.next_page_token || '';
    } catch (e) {
      if (e.status === 401) this.store.setNotice('The API key was refused.');
    }
  }

  /**
   * A `conversation` frame: `created`/`updated` upsert the room (a new one is subscribed; a
   * `last_message` becomes the preview of a room whose messages are not streamed to us);
   * `deleted`/`removed` take it out of the list.
   */
  apply(f) {
    const s = this.store;
    let r = s.room(f.conversation_id);
    if (f.event === 'deleted' || f.event === 'removed') {
      if (!r) return;
      // Deleted, or (agents) given to someone else: out of the list, unwritable.
      r.access = f.event === 'deleted' ? 'gone' : 'denied';
      r.subscribed = false;
      s.touch({ room: r.id });
      return;
    }
    if (!f.conversation) return;
    this.add([f.conversation]);
    r = s.room(f.conversation_id);
    const m = f.last_message;
    if (m && r && !(r.preview && r.preview.seq >= m.seq)) {
      r.preview = m; // not part of the loaded history: see ListView's lastShown
      r.headSeq = Math.max(r.headSeq, m.seq);
      s.touch({ room: r.id });
    }
  }

  async loadMore() {
    const token = this.store.nextPageToken;
    if (!token) return;
    const page = await this.api.listConversations({ pageSize: LIST_PAGE, pageToken: token });
    this.store.nextPageToken = page.next_page_token || '';
    this.add(page.result);
  }

  add(list) {
    for (const c of list) {
      const known = this.store.room(c.id);
      const r = this.store.upsertConversation(c);
      if (known) continue;
      if (this.listed) this.chat.announce(`New conversation: ${c.name || 'unnamed'}`);
      if (this.chat.canSubscribe()) this.chat.subscribe(r);
    }
    this.listed = true;
  }

  async create(name) {
    const c = await this.api.createConversation(name);
    const r = this.store.upsertConversation(c);
    r.loaded = true;
    this.chat.subscribe(r);
    return r;
  }

  /** The tenant's channel accounts, fetched once (empty when none or not available). */
  accounts() {
    if (!this.accountsPromise) {
      this.accountsPromise = this.api
        .listAccounts()
        .then((res) => res.result || [])
        .catch(() => {
          this.accountsPromise = null;
          return [];
        });
    }
    return this.accountsPromise;
  }

  async addParticipant(roomId, address, accountId) {
    const p = await this.api.addParticipant(roomId, address, accountId);
    const r = this.store.room(roomId);
    if (r) await this.chat.loadParticipants(r, true);
    return p;
  }

  /** Gives the room to an agent (`null`: unassigns); the room's `assigned` frame follows too. */
  async assign(roomId, agent) {
    const c = agent ? await this.api.assign(roomId, agent) : await this.api.unassign(roomId);
    this.store.setOwner(roomId, c.owner_id);
    return c;
  }

  /** Sets the room's status (Resolve / Reopen); watchers learn it from the `conversation` frame too. */
  async setStatus(roomId, status) {
    const c = await this.api.setStatus(roomId, status);
    this.store.upsertConversation(c);
    return c;
  }

  /** The operator joins the room as a webchat participant (also happens on its first send). */
  join(roomId) {
    const me = this.store.identity;
    return this.addParticipant(roomId, { type: 'webchat', target: me, name: me });
  }

  /**
   * A link that opens the page in end-user mode as `identity`, for this room only. The token
   * rides in the fragment (`#token=`), which browsers never send to a server: it stays out of
   * access logs and `Referer` headers.
   */
  async inviteLink(roomId, identity) {
    const t = await this.api.mintClientToken(identity, [roomId]);
    return `${location.origin}/#token=${encodeURIComponent(t.token)}`;
  }
}
