// Staff-only actions: the conversation list (the first page over REST whenever the socket's
// watch says `watching`, then live `conversation` frames; further pages on demand; a page under
// the list's filters), the tabs' counts from the server (`store.counts`, asked again whenever the
// list reloads, its filters change or a conversation changes), the agents for the picker (with presence), creating a conversation,
// adding participants, joining, and minting end-user invite links.

const LIST_PAGE = 30;
// Counts asked for within this long of each other (a burst of conversation frames) are one request.
const COUNTS_DEBOUNCE_MS = 150;

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
      this.refreshCounts();
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
    this.refreshCounts();
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
    // Shown to us again (given back to us, or unassigned): usable and live again.
    const back = r && r.access === 'denied';
    this.add([f.conversation]);
    r = s.room(f.conversation_id);
    if (back && r) {
      r.access = 'ok';
      if (this.chat.canSubscribe()) this.chat.subscribe(r);
    }
    const m = f.last_message;
    if (m && r && !(r.preview && r.preview.seq >= m.seq)) {
      r.preview = m; // not part of the loaded history: see ListView's lastShown
      r.headSeq = Math.max(r.headSeq, m.seq);
      s.touch({ room: r.id });
    }
  }

  /** Asks the server for the tabs' counts soon (bursts coalesce into one request). */
  refreshCounts() {
    clearTimeout(this.countsTimer);
    this.countsTimer = setTimeout(() => this.loadCounts(), COUNTS_DEBOUNCE_MS);
  }

  /**
   * The tabs' counts under the list's status filter and search, Mine for this sign-in's
   * identity, into `store.counts` (the newest request's answer wins).
   */
  async loadCounts() {
    const s = this.store;
    const asked = (this.countsAsked = (this.countsAsked || 0) + 1);
    try {
      const counts = await this.api.conversationCounts({ ownerId: s.identity, status: s.filter.status, q: s.filter.q });
      if (asked !== this.countsAsked) return;
      s.counts = counts;
      s.touch({ list: true });
    } catch (e) {
      if (asked === this.countsAsked) s.setNotice(`Could not count the conversations: ${e.message}`);
    }
  }

  /** The first page under `filter` (`{ownerId, status, q}`), added to the known rooms. */
  async search(filter) {
    const page = await this.api.listConversations({ pageSize: LIST_PAGE, filter });
    this.add(page.result, true);
    return page;
  }

  /**
   * The tenant's agents with their presence (`GET /v1.0/agents`): `null` when this server has no
   * agent accounts (404) or this sign-in may not list them (403); the picker then falls back.
   */
  async loadAgents() {
    try {
      const page = await this.api.agents();
      const s = this.store;
      s.agents = new Map(page.result.map((a) => [a.identity, a]));
      s.agentsKnown = true;
      s.touch({ list: true, room: s.activeId });
      return s.agents;
    } catch (e) {
      if (e.status === 404 || e.status === 403 || e.status === 405) return null;
      throw e;
    }
  }

  async loadMore() {
    const token = this.store.nextPageToken;
    if (!token) return;
    const page = await this.api.listConversations({ pageSize: LIST_PAGE, pageToken: token });
    this.store.nextPageToken = page.next_page_token || '';
    this.add(page.result);
  }

  /** `quiet`: found by a search, not new (no announcement). */
  add(list, quiet = false) {
    for (const c of list) {
      const known = this.store.room(c.id);
      const r = this.store.upsertConversation(c);
      if (known) continue;
      if (this.listed && !quiet) this.chat.announce(`New conversation: ${c.name || 'unnamed'}`);
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

  /** The tenant's channel accounts, fetched once or when `fresh` (empty when none or not available). */
  accounts(fresh = false) {
    if (!this.accountsPromise || fresh) {
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
  async setStatus(roomId, status, snoozedUntil) {
    const c = await this.api.setStatus(roomId, status, snoozedUntil);
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
    // The room's name rides along: the end user's token cannot read it.
    const r = this.store.room(roomId);
    const name = r && r.name ? `&name=${encodeURIComponent(r.name)}` : '';
    return `${location.origin}/#token=${encodeURIComponent(t.token)}${name}`;
  }
}
