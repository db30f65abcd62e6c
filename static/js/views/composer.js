// The composer: the text box (Enter sends with a keyboard, inserts a line on a touch screen),
// Reply / Private note (staff), canned responses typed as `/code` (a filtered listbox driven
// from the keyboard: arrows, Enter or Tab inserts, Escape closes) and attachments (attach.js).
// It does not send over the wire itself: `chat.send` does. When a WhatsApp customer's 24-hour
// window is closed, the text box takes only private notes and templates.js offers a template.

import { Attachments } from './attach.js';
import { $, h, setChildren } from './dom.js';
import { TemplatePicker } from './templates.js';

/** A touch screen without a fine pointer: phones and tablets. */
export const touch = () => matchMedia('(pointer: coarse)').matches && !matchMedia('(pointer: fine)').matches;

/** `/code` being typed just before the caret: its code (possibly ''), else null. */
export function slashQuery(text, caret) {
  const m = /(?:^|\s)\/([a-z0-9_-]{0,64})$/i.exec(text.slice(0, caret));
  return m ? m[1].toLowerCase() : null;
}

const MAX_SHOWN = 8;

export class Composer {
  /**
   * @param {object} o
   * @param {import('../store.js').Store} o.store
   * @param {import('../chat.js').Chat} o.chat
   * @param {import('./messages.js').MessagesView} o.messages
   */
  constructor({ store, chat, messages }) {
    this.store = store;
    this.chat = chat;
    this.messages = messages;
    this.roomId = null;
    this.staff = store.mode === 'operator';
    this.text = $('#composer-text');
    this.list = $('#canned');
    this.canned = null; // all canned responses (null: not loaded; [] when the server has none)
    this.shown = [];
    this.active = -1;
    this.files = new Attachments({ store, chat, onChange: () => this.updateMode() });
    this.templates = new TemplatePicker({ store, chat, messages });
    $('#compose-mode').hidden = !this.staff;
    for (const radio of document.querySelectorAll('#compose-mode input')) radio.onchange = () => this.updateMode();
    $('#composer').onsubmit = (ev) => {
      ev.preventDefault();
      this.send();
    };
    this.text.addEventListener('keydown', (ev) => this.keydown(ev));
    this.text.addEventListener('input', () => {
      this.grow();
      this.suggest();
      if (this.roomId && this.text.value.trim()) this.chat.typing(this.roomId);
    });
    // Leaving the box closes the list (later, so a click on an option lands first; not if the
    // focus came back meanwhile).
    this.text.addEventListener('blur', () =>
      setTimeout(() => {
        if (document.activeElement !== this.text) this.closeList();
      }, 150),
    );
  }

  get note() {
    return this.staff && $('#mode-note').checked;
  }

  updateMode() {
    $('#composer').classList.toggle('note', this.note);
    const r = this.store.room(this.roomId);
    if (r) this.render(r);
  }

  /** Another room: an empty box, a reply (not a note), no files. */
  reset(roomId) {
    this.roomId = roomId;
    this.text.value = '';
    document.querySelector('#compose-mode input[value=public]').checked = true;
    this.updateMode();
    this.files.reset(roomId);
    this.templates.reset(roomId);
    this.closeList();
    this.grow();
  }

  render(r) {
    const denied = r.access !== 'ok';
    const closed = r.status === 'closed';
    // A closed WhatsApp window: free text cannot go out, a private note still can.
    const windowClosed = this.templates.render(r) && !this.note;
    this.text.disabled = denied || closed || windowClosed;
    let ph = this.placeholder();
    if (denied) ph = r.access === 'gone' ? 'This conversation was deleted.' : 'You no longer have access to this conversation.';
    else if (closed) ph = 'This conversation is closed.';
    else if (windowClosed) ph = 'The WhatsApp window is closed — send a template, or write a private note';
    else if (this.note) ph = touch() ? 'Private note' : 'Private note — only the team sees it';
    if (this.text.placeholder !== ph) this.text.placeholder = ph;
  }

  /** Short enough to fit a phone's composer; the Enter hint only where Enter sends. */
  placeholder() {
    if (touch()) return 'Message';
    return matchMedia('(max-width: 720px)').matches ? 'Message (Enter to send)' : 'Write a message — Enter to send, Shift+Enter for a new line';
  }

  keydown(ev) {
    if (!this.list.hidden) {
      if (ev.key === 'ArrowDown' || ev.key === 'ArrowUp') {
        this.move(ev.key === 'ArrowDown' ? 1 : -1);
        ev.preventDefault();
        return;
      }
      if ((ev.key === 'Enter' || ev.key === 'Tab') && this.active >= 0) {
        this.insert(this.shown[this.active]);
        ev.preventDefault();
        return;
      }
      if (ev.key === 'Escape') {
        this.closeList();
        ev.preventDefault();
        return;
      }
    }
    if (ev.key === 'Enter' && !ev.shiftKey && !ev.isComposing && !touch()) {
      ev.preventDefault();
      this.send();
    }
  }

  async send() {
    const text = this.text.value;
    if (!this.roomId || this.files.busy()) return;
    const medias = this.files.ready();
    if (!text.trim() && !medias.length) return;
    this.messages.pinToBottom();
    this.chat.send(this.roomId, text, medias, this.note ? 'internal' : 'public');
    this.text.value = '';
    this.files.clear();
    this.closeList();
    this.grow();
    this.text.focus();
  }

  grow() {
    this.text.style.height = 'auto';
    this.text.style.height = `${Math.min(this.text.scrollHeight, 160)}px`;
  }

  // ---- canned responses ------------------------------------------------------------------------

  async loadCanned() {
    if (this.canned || !this.chat.api) return;
    this.canned = [];
    try {
      const res = await this.chat.api.canned();
      this.canned = res.result || [];
    } catch {
      this.canned = []; // no canned responses on this server (404) or for this sign-in
    }
  }

  async suggest() {
    if (!this.staff) return;
    const q = slashQuery(this.text.value, this.text.selectionStart);
    if (q === null) return this.closeList();
    await this.loadCanned();
    const again = slashQuery(this.text.value, this.text.selectionStart);
    if (again === null) return this.closeList();
    this.shown = this.canned.filter((c) => c.short_code.startsWith(again)).slice(0, MAX_SHOWN);
    if (!this.shown.length) return this.closeList();
    this.active = 0;
    this.renderList();
    return undefined;
  }

  renderList() {
    this.list.hidden = false;
    setChildren(
      this.list,
      this.shown.map((c, i) =>
        h(
          'li',
          {
            id: `canned-${i}`,
            role: 'option',
            'aria-selected': String(i === this.active),
            onmousedown: (ev) => {
              ev.preventDefault();
              this.insert(c);
            },
          },
          h('span', { class: 'code' }, `/${c.short_code}`),
          ' ',
          h('span', { class: 'content', dir: 'auto' }, c.content.length > 90 ? `${c.content.slice(0, 90)}…` : c.content),
        ),
      ),
    );
    this.text.setAttribute('aria-activedescendant', `canned-${this.active}`);
  }

  move(step) {
    this.active = (this.active + step + this.shown.length) % this.shown.length;
    this.renderList();
  }

  /** Replaces the `/code` before the caret with the response's text. */
  insert(c) {
    const caret = this.text.selectionStart;
    const before = this.text.value.slice(0, caret).replace(/\/[a-z0-9_-]*$/i, '');
    const after = this.text.value.slice(caret);
    this.text.value = before + c.content + after;
    const at = before.length + c.content.length;
    this.text.setSelectionRange(at, at);
    this.closeList();
    this.grow();
    this.text.focus();
  }

  closeList() {
    if (this.list.hidden) return;
    this.list.hidden = true;
    this.shown = [];
    this.active = -1;
    this.text.removeAttribute('aria-activedescendant');
  }
}
