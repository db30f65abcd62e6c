// Telling the person about new messages: the tab title carries the unread count
// ("(3) Switchboard"), and — per person, kept in this browser's localStorage — an optional sound
// and desktop notifications for new messages of others in Mine and Unassigned (staff) or in
// the chat (end users). Nothing fires for one's own messages, for a room on screen in a visible
// tab, or for history loaded when scrolling back (only messages newer than the page's start).

import { totalUnread } from './inbox.js';
import { $ } from './views/dom.js';

const TITLE = 'Switchboard';

function setting(identity, name) {
  try {
    return localStorage.getItem(`switchboard:notify:${identity}:${name}`) === '1';
  } catch {
    return false;
  }
}

function saveSetting(identity, name, on) {
  try {
    localStorage.setItem(`switchboard:notify:${identity}:${name}`, on ? '1' : '0');
  } catch {
    // storage disabled: for this page only
  }
}

export class Notifier {
  /** @param {{store: import('./store.js').Store}} o */
  constructor({ store }) {
    this.store = store;
    this.since = new Date().toISOString();
    this.seen = new Set(); // message ids already notified
    this.audio = null;
    const sound = $('#set-sound');
    const desktop = $('#set-desktop');
    sound.checked = setting(store.identity, 'sound');
    desktop.checked = setting(store.identity, 'desktop') && typeof Notification !== 'undefined' && Notification.permission === 'granted';
    sound.onchange = () => saveSetting(store.identity, 'sound', sound.checked);
    desktop.onchange = async () => {
      if (desktop.checked && typeof Notification !== 'undefined' && Notification.permission !== 'granted') {
        const p = await Notification.requestPermission().catch(() => 'denied');
        if (p !== 'granted') desktop.checked = false;
      }
      saveSetting(store.identity, 'desktop', desktop.checked);
      this.explain();
    };
    this.explain();
  }

  explain() {
    const el = $('#set-desktop-state');
    const text =
      typeof Notification === 'undefined'
        ? 'This browser has no desktop notifications.'
        : Notification.permission === 'denied'
          ? 'Notifications are blocked for this site in the browser settings.'
          : '';
    if (el.textContent !== text) el.textContent = text;
    $('#set-desktop').disabled = typeof Notification === 'undefined' || Notification.permission === 'denied';
  }

  /** After every store change: the title, and any new message worth a sound or a notification. */
  update() {
    const s = this.store;
    const n = totalUnread(s);
    const title = n ? `(${n > 99 ? '99+' : n}) ${TITLE}` : TITLE;
    if (document.title !== title) document.title = title;
    for (const r of s.rooms.values()) {
      const last = s.lastMessage(r) || r.preview;
      if (!last || this.seen.has(last.id) || !(last.tm_create > this.since)) continue;
      this.seen.add(last.id);
      if (s.isMine(r, last) || last.seq <= r.readSeq) continue;
      if (s.mode === 'operator' && r.owner && r.owner !== s.identity) continue; // another agent's
      if (r.id === s.activeId && document.visibilityState === 'visible') continue;
      this.alert(r, last);
    }
  }

  alert(r, m) {
    const s = this.store;
    if (setting(s.identity, 'sound')) this.beep();
    if (!setting(s.identity, 'desktop') || typeof Notification === 'undefined' || Notification.permission !== 'granted') return;
    const who = s.authorName(r, m);
    const body = m.text || 'sent an attachment';
    try {
      const note = new Notification(`${who} — ${r.name || TITLE}`, { body: body.slice(0, 200), tag: r.id });
      note.onclick = () => {
        window.focus();
        location.hash = `c=${r.id}`;
      };
    } catch {
      // some browsers only allow notifications from a service worker
    }
  }

  /** A short tone (WebAudio; no file to fetch). */
  beep() {
    try {
      this.audio = this.audio || new AudioContext();
      const ctx = this.audio;
      const o = ctx.createOscillator();
      const g = ctx.createGain();
      o.frequency.value = 880;
      g.gain.setValueAtTime(0.08, ctx.currentTime);
      g.gain.exponentialRampToValueAtTime(0.0001, ctx.currentTime + 0.25);
      o.connect(g).connect(ctx.destination);
      o.start();
      o.stop(ctx.currentTime + 0.25);
    } catch {
      // no audio
    }
  }
}
