// The list's tabs (Mine, Unassigned, All, each with its count), the status filter and the
// search box (staff only). The filter lives in the store (`store.filter`) and the list shows the
// rooms that match it; every change also asks the server for the first page under the same
// filters (`owner_id`, `status`, `q`), so rooms beyond the loaded pages appear, and a search
// matches contacts and addresses the page has never loaded. The counts are the server's
// (`GET /v1.0/conversations/counts` under the same status and search, kept in `store.counts` by
// the directory), not of the rooms loaded so far; a count the server capped shows as "N+".

import { $ } from './dom.js';

const SEARCH_DEBOUNCE_MS = 250;

export class FiltersView {
  /** @param {{store: import('../store.js').Store, chat: import('../chat.js').Chat}} o */
  constructor({ store, chat }) {
    this.store = store;
    this.chat = chat;
    this.timer = 0;
    this.tabs = [...document.querySelectorAll('#tabs [role=tab]')];
    $('#filters').hidden = false;
    for (const b of this.tabs) {
      b.onclick = () => this.setTab(b.dataset.tab);
      b.addEventListener('keydown', (ev) => this.arrows(ev, b));
    }
    $('#status-filter').onchange = () => this.set({ status: $('#status-filter').value });
    $('#search').addEventListener('input', () => {
      clearTimeout(this.timer);
      this.timer = setTimeout(() => this.set({ q: $('#search').value.trim() }), SEARCH_DEBOUNCE_MS);
    });
    $('#search').addEventListener('keydown', (ev) => {
      if (ev.key === 'Escape' && $('#search').value) {
        $('#search').value = '';
        this.set({ q: '' });
        ev.preventDefault();
      } else if (ev.key === 'ArrowDown') {
        const first = $('#conv-list button.conv');
        if (first) first.focus();
        ev.preventDefault();
      }
    });
    store.onChange((d) => {
      if (d.list) this.render();
    });
    this.render();
  }

  /** Tabs follow the WAI-ARIA pattern: arrows move between them (and select). */
  arrows(ev, b) {
    if (ev.key !== 'ArrowRight' && ev.key !== 'ArrowLeft') return;
    const i = this.tabs.indexOf(b);
    const next = this.tabs[(i + (ev.key === 'ArrowRight' ? 1 : this.tabs.length - 1)) % this.tabs.length];
    next.focus();
    this.setTab(next.dataset.tab);
    ev.preventDefault();
  }

  setTab(tab) {
    this.set({ tab });
  }

  async set(change) {
    const f = this.store.filter;
    Object.assign(f, change);
    if ('q' in change) f.qIds = f.q ? new Set() : null;
    this.store.touch({ list: true });
    this.chat.directory.refreshCounts();
    const asked = { ...f };
    const filter = { status: f.status, q: f.q };
    if (f.tab === 'mine') filter.ownerId = this.store.identity;
    if (f.tab === 'unassigned') filter.ownerId = 'none';
    try {
      const page = await this.chat.directory.search(filter);
      // A newer change won the race: its own answer decides.
      if (asked.q !== f.q || asked.tab !== f.tab || asked.status !== f.status) return;
      if (f.q) f.qIds = new Set(page.result.map((c) => c.id));
      this.store.touch({ list: true });
    } catch (e) {
      this.store.setNotice(`Could not search: ${e.message}`);
    }
  }

  render() {
    const f = this.store.filter;
    const counts = this.store.counts;
    for (const b of this.tabs) {
      const on = b.dataset.tab === f.tab;
      b.setAttribute('aria-selected', String(on));
      b.tabIndex = on ? 0 : -1;
      if (!counts) continue; // until the server's first answer
      const c = b.querySelector('.count');
      const v = counts[b.dataset.tab];
      const n = counts.capped && v > 0 && v === Math.max(counts.mine, counts.unassigned, counts.all) ? `${v}+` : String(v);
      if (c.textContent !== n) c.textContent = n;
    }
  }
}
