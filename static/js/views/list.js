// The conversation list: name, channel badges, last message preview, time, unread count, the
// assignee and a status other than open; only the rooms matching the tab, status filter and
// search (store.matches); plus (API-key operator) "new conversation" and "load more".

import { matches } from '../inbox.js';
import { $, h, channelBadges, roomTitle, setChildren, textDir, timeEl } from './dom.js';

/** The room's last message: from its loaded history, or the list watch's newer preview. */
function lastShown(store, r) {
  const last = store.lastMessage(r);
  return r.preview && (!last || r.preview.seq > last.seq) ? r.preview : last;
}

export class ListView {
  /** @param {{store: import('../store.js').Store, chat: import('../chat.js').Chat, onOpen: (id: string) => void}} o */
  constructor({ store, chat, onOpen }) {
    this.store = store;
    this.chat = chat;
    this.onOpen = onOpen;
    this.ul = $('#conv-list');
    this.items = new Map(); // room id -> li
    this.order = '';
    const form = $('#new-conv');
    // Creating a conversation takes an API key.
    form.hidden = store.role !== 'key';
    form.onsubmit = (ev) => this.create(ev);
    const more = $('#more-convs');
    more.onclick = async () => {
      more.disabled = true;
      try {
        await chat.directory.loadMore();
      } catch (e) {
        store.setNotice(`Could not load conversations: ${e.message}`);
      } finally {
        more.disabled = false;
      }
    };
    this.ul.addEventListener('keydown', (ev) => this.arrows(ev));
  }

  async create(ev) {
    ev.preventDefault();
    const input = $('#new-conv-name');
    const name = input.value.trim();
    const button = ev.target.querySelector('button');
    button.disabled = true;
    try {
      const r = await this.chat.directory.create(name);
      input.value = '';
      this.onOpen(r.id);
    } catch (e) {
      this.store.setNotice(`Could not create the conversation: ${e.message}`);
    } finally {
      button.disabled = false;
    }
  }

  /** Up/Down move between conversations. */
  arrows(ev) {
    if (ev.key !== 'ArrowDown' && ev.key !== 'ArrowUp') return;
    const buttons = [...this.ul.querySelectorAll('button.conv')];
    const i = buttons.indexOf(document.activeElement);
    if (i < 0) return;
    const next = buttons[ev.key === 'ArrowDown' ? Math.min(i + 1, buttons.length - 1) : Math.max(i - 1, 0)];
    next.focus();
    ev.preventDefault();
  }

  sortKey(r) {
    const last = lastShown(this.store, r);
    return (last && last.tm_create) || r.tmCreate || '';
  }

  render() {
    const s = this.store;
    const rooms = [...s.rooms.values()].filter((r) => r.access !== 'gone' && (s.mode !== 'operator' || matches(s, r)));
    rooms.sort((a, b) => (this.sortKey(b) > this.sortKey(a) ? 1 : this.sortKey(b) < this.sortKey(a) ? -1 : 0));
    const focusedId = document.activeElement && document.activeElement.closest('#conv-list') ? document.activeElement.dataset.id : null;
    for (const [id, li] of this.items) {
      if (!s.rooms.has(id) || !rooms.includes(s.room(id))) {
        li.remove();
        this.items.delete(id);
      }
    }
    for (const r of rooms) {
      let li = this.items.get(r.id);
      if (!li) {
        const button = h('button', { type: 'button', class: 'conv', dataset: { id: r.id }, onclick: () => this.onOpen(r.id) });
        li = h('li', {}, button);
        this.items.set(r.id, li);
      }
      this.fill(li.firstChild, r);
    }
    const order = rooms.map((r) => r.id).join();
    if (order !== this.order) {
      this.order = order;
      for (const r of rooms) this.ul.append(this.items.get(r.id));
      if (focusedId && this.items.has(focusedId)) this.items.get(focusedId).firstChild.focus();
    }
    if (!rooms.length) {
      const f = s.filter;
      const text =
        s.mode !== 'operator' ? 'No conversations.' : f.q || f.status || f.tab !== 'all' ? 'No conversation matches.' : 'No conversations yet.';
      const none = this.ul.querySelector('.none');
      if (!none || none.textContent !== text) setChildren(this.ul, h('li', { class: 'none muted' }, text));
    } else {
      const none = this.ul.querySelector('.none');
      if (none) none.remove();
    }
    $('#more-convs').hidden = !(s.mode === 'operator' && s.nextPageToken);
  }

  fill(button, r) {
    const s = this.store;
    const last = lastShown(s, r);
    const pendingLast = [...r.pending.values()].pop();
    const unread = s.unread(r);
    let preview = 'No messages yet';
    let body = '';
    if (pendingLast) body = pendingLast.text;
    else if (last) body = last.text || (last.medias.length ? 'Attachment' : '');
    if (pendingLast) preview = `You: ${body}`;
    else if (last) preview = `${s.authorName(r, last)}: ${body}`;
    const active = s.activeId === r.id;
    if (active) button.setAttribute('aria-current', 'true');
    else button.removeAttribute('aria-current');
    const title = roomTitle(r, s.mode, s.customerName(r));
    const shownPreview = r.access === 'denied' ? 'No access' : preview;
    // The button's accessible name is its own text (so it always contains what is shown, as
    // WCAG's "label in name" asks), with commas and words for screen readers only: name,
    // channels, time, last message, "2 unread", status, "assigned to Ann".
    const owner = s.mode === 'operator' ? ownerText(s, r) : '';
    const status = s.mode === 'operator' && r.status !== 'open' ? r.status : '';
    const sep = () => [h('span', { class: 'sr-only' }, ', '), ' '];
    const sig = JSON.stringify([title, preview, unread, [...s.channels(r)], last && last.tm_create, r.access, owner, status]);
    if (button.dataset.sig === sig) return;
    button.dataset.sig = sig;
    setChildren(
      button,
      h(
        'span',
        { class: 'conv-top' },
        h('span', { class: 'conv-name', dir: 'auto' }, title),
        sep(),
        h('span', { class: 'badges' }, channelBadges(s.channels(r))),
        last ? [sep(), timeEl(last.tm_create)] : null,
      ),
      sep(),
      h(
        'span',
        { class: 'conv-bottom' },
        // Laid out in the direction of the message text (not of the author's name before it).
        h('span', { class: 'preview', dir: body ? textDir(body) : 'auto' }, shownPreview),
        unread ? [sep(), h('span', { class: 'unread' }, unread > 99 ? '99+' : String(unread)), h('span', { class: 'sr-only' }, ' unread')] : null,
      ),
      owner || status
        ? h(
            'span',
            { class: 'conv-owner' },
            status ? [sep(), h('span', { class: `st st-${status}` }, status)] : null,
            owner ? [sep(), h('span', { class: 'sr-only' }, 'assigned to '), h('span', { 'aria-hidden': 'true' }, '→ '), h('bdi', {}, owner)] : null,
          )
        : null,
    );
  }
}

/** The assignee's name (when the agents are known), "You", or "" when unassigned. */
function ownerText(s, r) {
  if (!r.owner) return '';
  if (r.owner === s.identity) return 'You';
  const a = s.agents.get(r.owner);
  return (a && a.name) || r.owner;
}
