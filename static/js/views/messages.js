// The message list of the open room: keyed bubbles (an optimistic bubble becomes its acked
// message in place), images for image medias, scroll pinning, infinite scroll back through
// history, read receipts for what is on screen, an unread divider, day separators, the typing
// line; consecutive bubbles of one author grouped, private notes (yellow), edited and deleted
// messages marked, the channel and account of inbound messages ("via SMS to +1 555…") and the
// delivery status per recipient in a tooltip.
//
// Scrolling: a room opens pinned to its newest message and stays pinned until the user scrolls
// up. The pin is kept as state (not measured at render time) because the list may be rendered
// while it is hidden (a phone shows the list *or* the room) or before images load; a
// ResizeObserver re-applies it when the scroller gets its size (phone layout, keyboard).

import { $, h, channelLabel, dayKey, dayLabel, linkify, safeUrl, setChildren, timeEl } from './dom.js';

const NEAR_BOTTOM_PX = 80;
/** Bubbles of one author closer than this are grouped (one name line). */
const GROUP_MS = 5 * 60_000;
const LOAD_OLDER_PX = 160;

export class MessagesView {
  /** @param {{store: import('../store.js').Store, chat: import('../chat.js').Chat}} o */
  constructor({ store, chat }) {
    this.store = store;
    this.chat = chat;
    this.scroller = $('#scroller');
    this.ol = $('#messages');
    this.historyState = $('#history-state');
    this.typingEl = $('#typing');
    this.roomId = null;
    this.nodes = new Map(); // key -> li
    this.visible = new Set(); // li currently on screen
    this.readTimer = 0;
    this.pinned = true; // follow the newest message (until the user scrolls up)
    this.pinnedTop = 0; // scrollTop where we last pinned (0: not pinned on screen yet)
    this.dividerSeq = null; // my read marker when the room was opened: "New messages" below it
    this.accounts = new Map(); // channel account id -> account, for "via SMS to +1 555…"
    // Reading channel accounts takes an API key.
    if (chat.directory && store.role === 'key') {
      chat.directory.accounts().then((list) => {
        this.accounts = new Map(list.map((a) => [a.id, a]));
        this.nodes.forEach((li) => delete li.dataset.sig);
        this.render();
      });
    }
    this.readObserver = new IntersectionObserver((entries) => this.onSeen(entries), {
      root: this.scroller,
      threshold: 0.5,
    });
    this.scroller.addEventListener(
      'scroll',
      () => {
        const sc = this.scroller;
        if (sc.clientHeight) this.pinned = sc.scrollHeight - sc.scrollTop - sc.clientHeight < NEAR_BOTTOM_PX;
        this.maybeLoadOlder();
      },
      { passive: true },
    );
    new ResizeObserver(() => {
      if (this.stillPinned()) this.toBottom();
      this.maybeLoadOlder();
    }).observe(this.scroller);
    // An image that finishes loading grows the list: stay pinned to the bottom if we were there.
    this.scroller.addEventListener(
      'load',
      (ev) => {
        if (ev.target.tagName === 'IMG' && this.stillPinned()) this.toBottom();
      },
      true,
    );
    document.addEventListener('visibilitychange', () => this.scheduleRead());
  }

  show(roomId) {
    if (this.roomId === roomId) return;
    this.roomId = roomId;
    this.readObserver.disconnect();
    this.visible.clear();
    this.nodes.clear();
    this.ol.replaceChildren();
    this.pinToBottom();
    this.dividerSeq = null;
    this.render();
  }

  /** Scroll to the newest message after the next render (the user just sent one). */
  pinToBottom() {
    this.pinned = true;
    this.pinnedTop = 0;
  }

  /** `pinned`, unless the user scrolled up since we last pinned (its event not dispatched yet). */
  stillPinned() {
    const sc = this.scroller;
    if (this.pinned && sc.clientHeight && sc.scrollTop + NEAR_BOTTOM_PX < this.pinnedTop) this.pinned = false;
    return this.pinned;
  }

  toBottom() {
    const sc = this.scroller;
    sc.scrollTop = sc.scrollHeight;
    this.pinnedTop = sc.clientHeight ? sc.scrollTop : 0;
  }

  render() {
    const s = this.store;
    const r = s.room(this.roomId);
    if (!r) return;
    const sc = this.scroller;
    const firstBefore = this.ol.firstElementChild;
    const heightBefore = sc.scrollHeight;
    const topBefore = sc.scrollTop;

    // The read marker is known once the room is subscribed (`subscribed.last_read_seq`); it is
    // kept while the room stays open, so what was new when it opened stays marked.
    if (this.dividerSeq === null && r.subscribed) this.dividerSeq = r.readSeq;
    const items = [];
    let divided = !(this.dividerSeq > 0);
    let day = '';
    let prevMsg = null;
    for (const m of s.sorted(r)) {
      const d = dayKey(m.tm_create);
      if (d && d !== day) {
        day = d;
        items.push({ key: `day:${d}`, day: dayLabel(m.tm_create) });
        prevMsg = null;
      }
      if (!divided && m.seq > this.dividerSeq && !s.isMine(r, m)) {
        items.push({ key: 'divider' });
        divided = true;
        prevMsg = null;
      }
      items.push({ key: `m:${m.id}`, m, grouped: !!prevMsg && sameGroup(s, r, prevMsg, m) });
      prevMsg = m;
    }
    for (const p of r.pending.values()) {
      const d = dayKey(p.tm);
      if (d && d !== day) {
        day = d;
        items.push({ key: `day:${d}`, day: dayLabel(p.tm) });
      }
      items.push({ key: `p:${p.clientId}`, p });
    }
    const keep = new Set(items.map((i) => i.key));
    for (const [key, li] of this.nodes) {
      if (keep.has(key)) continue;
      // A pending bubble whose message arrived is adopted by it below rather than removed.
      if (key.startsWith('p:') && items.some((i) => i.m && i.m.client_id === key.slice(2))) continue;
      this.readObserver.unobserve(li);
      this.visible.delete(li);
      li.remove();
      this.nodes.delete(key);
    }
    let prev = null;
    for (const item of items) {
      let li = this.nodes.get(item.key);
      if (!li && item.m && item.m.client_id && this.nodes.has(`p:${item.m.client_id}`)) {
        li = this.nodes.get(`p:${item.m.client_id}`);
        this.nodes.delete(`p:${item.m.client_id}`);
        this.nodes.set(item.key, li);
      }
      if (!li) {
        if (item.key === 'divider') li = h('li', { class: 'divider' }, h('span', {}, 'New messages'));
        else if (item.day) li = h('li', { class: 'day' }, h('span', {}, item.day));
        else li = h('li', { class: 'msg' });
        this.nodes.set(item.key, li);
      }
      if (item.m || item.p) this.fill(li, r, item);
      const want = prev ? prev.nextElementSibling : this.ol.firstElementChild;
      if (want !== li) {
        if (prev) prev.after(li);
        else this.ol.prepend(li);
      }
      prev = li;
    }

    this.renderHistoryState(r);
    this.renderTyping(r);

    const prepended = firstBefore && this.ol.firstElementChild !== firstBefore && firstBefore.isConnected;
    if (this.stillPinned()) {
      this.toBottom();
    } else if (prepended) {
      sc.scrollTop = topBefore + (sc.scrollHeight - heightBefore);
    }
    this.maybeLoadOlder();
    this.scheduleRead();
  }

  fill(li, r, { m, p, grouped = false }) {
    const s = this.store;
    const mine = p ? true : s.isMine(r, m);
    const deliveries = (m && m.deliveries) || [];
    let status = '';
    if (p) status = p.state === 'failed' ? 'failed' : 'sending…';
    else if (deliveries.length) status = deliveryStatus(deliveries);
    else if (mine) status = s.peerReadSeq(r) >= m.seq ? 'read' : 'sent';
    else if (m.direction === 'outbound') status = m.status;
    const author = p ? 'You' : s.authorName(r, m);
    const participant = m && m.author ? r.participants.get(m.author) : null;
    const channel = (m && m.channel) || (participant && participant.address.type) || 'webchat';
    // The customer's channel (not the hub's own webchat or agent participants).
    let via = channel !== 'webchat' && channel !== 'agent' ? channelLabel(channel) : '';
    const account = m && m.via && m.via.account_id ? this.accounts.get(m.via.account_id) : null;
    if (via && account && !mine) via = `${via} to ${account.address}`;
    const statusTitle = deliveries.map((d) => `${channelLabel(d.channel)} to ${d.to}: ${d.status}${d.error ? ` (${d.error})` : ''}`).join('\n');
    const deleted = !!(m && m.deleted_at);
    const note = (p ? p.visibility : m.visibility) === 'internal';
    const text = deleted ? '' : p ? p.text : m.text;
    const medias = deleted ? [] : p ? p.medias : m.medias;
    const tm = p ? p.tm : m.tm_create;
    const edited = m && !deleted && m.edited_at;
    const sig = JSON.stringify([mine, status, statusTitle, author, via, text, tm, medias.length, p && p.error, grouped, note, deleted, edited]);
    if (li.dataset.sig === sig) return;
    li.dataset.sig = sig;
    li.className = `msg ${mine ? 'mine' : 'theirs'}${p ? ' pending' : ''}${status === 'failed' ? ' failed' : ''}${grouped ? ' grouped' : ''}${note ? ' note' : ''}${deleted ? ' deleted' : ''}`;
    if (m) {
      li.dataset.seq = String(m.seq);
      li.dataset.id = m.id;
      if (!mine) this.readObserver.observe(li);
    } else {
      delete li.dataset.seq;
    }
    const retry = p && p.state === 'failed'
      ? h('button', { type: 'button', class: 'link retry', onclick: () => this.chat.retry(r.id, p.clientId) }, 'Retry')
      : null;
    setChildren(
      li,
      h(
        'div',
        { class: 'bubble' },
        note ? h('div', { class: 'note-label' }, 'Private note — only the team sees it') : null,
        h(
          'div',
          { class: grouped ? 'meta sr-only' : 'meta' },
          h('span', { class: 'author', dir: 'auto' }, author),
          via ? h('span', { class: 'via' }, ` via ${via}`) : null,
        ),
        text ? h('p', { class: 'text', dir: 'auto' }, linkify(text)) : null,
        deleted ? h('p', { class: 'text gone' }, 'This message was deleted.') : null,
        medias.length ? h('div', { class: 'medias' }, medias.map(mediaEl)) : null,
        h(
          'div',
          { class: 'foot' },
          timeEl(tm),
          edited ? h('span', { class: 'edited', title: `Edited ${new Date(edited).toLocaleString()}` }, 'edited') : null,
          status ? h('span', { class: `status st-${status.replace(/\W/g, '')}`, title: statusTitle || null }, status) : null,
          p && p.error ? h('span', { class: 'error' }, p.error) : null,
          retry,
        ),
      ),
    );
  }

  renderHistoryState(r) {
    let text = '';
    if (r.loadingOlder) text = 'Loading older messages…';
    else if (r.historyGap) text = 'Earlier messages are not available.';
    else if (r.hasMore) text = '';
    else if (r.loaded && r.messages.size) text = 'Beginning of the conversation';
    else if (r.loaded || r.subscribed) text = 'No messages yet. Say hello!';
    else text = 'Loading…';
    if (r.hasMore && !r.loadingOlder) {
      if (!this.historyState.querySelector('button')) {
        setChildren(
          this.historyState,
          h('button', { type: 'button', class: 'link', onclick: () => this.chat.loadOlder(r.id) }, 'Load older messages'),
        );
      }
    } else if (this.historyState.textContent !== text || this.historyState.querySelector('button')) {
      this.historyState.textContent = text;
    }
  }

  renderTyping(r) {
    const who = this.store.typingNow(r);
    let text = who.length === 0 ? '' : who.length === 1 ? `${who[0]} is typing…` : `${who.join(', ')} are typing…`;
    // An end user never sees the team's sign-in identities.
    if (who.length && this.store.mode === 'user') text = 'Support is typing…';
    if (this.typingEl.textContent !== text) this.typingEl.textContent = text;
  }

  maybeLoadOlder() {
    const r = this.store.room(this.roomId);
    // Not while hidden (a phone showing the list): scrollTop is 0 there without the user
    // having scrolled anywhere.
    if (!r || !r.hasMore || r.loadingOlder || !this.scroller.clientHeight) return;
    if (this.scroller.scrollTop > LOAD_OLDER_PX) return;
    this.chat.loadOlder(r.id);
  }

  onSeen(entries) {
    for (const e of entries) {
      if (e.isIntersecting) this.visible.add(e.target);
      else this.visible.delete(e.target);
    }
    this.scheduleRead();
  }

  /** Sends `read` for the newest message of others that is on screen. */
  scheduleRead() {
    clearTimeout(this.readTimer);
    this.readTimer = setTimeout(() => {
      if (document.visibilityState !== 'visible' || !this.roomId) return;
      let max = 0;
      for (const li of this.visible) if (li.isConnected) max = Math.max(max, Number(li.dataset.seq) || 0);
      if (max) this.chat.markRead(this.roomId, max);
    }, 200);
  }
}

/** `m` continues `prev`'s group: same author (and side), same kind, within GROUP_MS. */
function sameGroup(s, r, prev, m) {
  if (s.isMine(r, prev) !== s.isMine(r, m)) return false;
  if ((prev.author || null) !== (m.author || null) || prev.visibility !== m.visibility) return false;
  return Date.parse(m.tm_create) - Date.parse(prev.tm_create) < GROUP_MS;
}

/** Aggregate of per-channel deliveries: failed > queued > sent > delivered. */
function deliveryStatus(list) {
  if (list.some((d) => d.status === 'failed')) return 'failed';
  if (list.every((d) => d.status === 'delivered')) return 'delivered';
  if (list.every((d) => d.status === 'sent' || d.status === 'delivered')) return 'sent';
  return 'queued';
}

function mediaEl(media) {
  const url = safeUrl(media.url);
  if (!url) return null;
  if ((media.content_type || '').startsWith('image/')) {
    const thumb = media.thumbnail_url ? safeUrl(media.thumbnail_url) : null;
    return h('a', { href: url, target: '_blank', rel: 'noopener noreferrer' }, h('img', { src: thumb || url, alt: media.name ? `Image: ${media.name}` : 'Image attachment', loading: 'lazy' }));
  }
  let name = media.name || new URL(url).pathname.split('/').pop() || 'attachment';
  try {
    name = decodeURIComponent(name);
  } catch {
    // keep it encoded
  }
  return h('a', { href: url, target: '_blank', rel: 'noopener noreferrer', class: 'file' }, `Attachment: ${name}`);
}
