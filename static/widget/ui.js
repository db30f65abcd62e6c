// The widget's panel: launcher, chat panel, pre-chat form, composer, inside a Shadow DOM.
// It draws and reports what the visitor does (callbacks); it knows nothing of the hub: the
// session and the protocol are app.js and the JS client.
//
// Accessibility: the launcher is a button with aria-expanded and an unread count in its label;
// the panel is a labelled dialog; new messages are announced by the log's aria-live region;
// opening moves focus into the panel, Escape closes it and gives focus back to the launcher.

import { css } from './styles.js';

const SVG = 'http://www.w3.org/2000/svg';
/** A stroked 24×24 icon from a path (no emoji font needed). */
function icon(d) {
  const svg = document.createElementNS(SVG, 'svg');
  svg.setAttribute('viewBox', '0 0 24 24');
  svg.setAttribute('aria-hidden', 'true');
  const p = document.createElementNS(SVG, 'path');
  p.setAttribute('d', d);
  svg.append(p);
  return svg;
}
const CHAT = 'M21 15a2 2 0 0 1-2 2H7l-4 4V5a2 2 0 0 1 2-2h14a2 2 0 0 1 2 2z';
const CLIP = 'M21.4 11.1l-9.2 9.2a6 6 0 0 1-8.5-8.5l9.2-9.2a4 4 0 0 1 5.7 5.7l-9.2 9.2a2 2 0 0 1-2.8-2.8l8.5-8.5';

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k === 'class') e.className = v;
    else if (k === 'text') e.textContent = v;
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children) if (c) e.append(c);
  return e;
}

export class Panel {
  /** `on`: {send(text), files(FileList|File[]), prechat({name,email}), opened(), typing()}. */
  constructor(branding, on) {
    this.on = on;
    this.unread = 0;
    this.rows = new Map();
    this.host = el('div', { id: 'switchboard-widget' });
    this.root = this.host.attachShadow({ mode: 'open' });
    const title = branding.name || 'Chat';
    this.launcher = el('button', { class: 'launcher', type: 'button', 'aria-expanded': 'false', 'aria-controls': 'sb-panel',
      'aria-label': `Open chat with ${title}`, onclick: () => this.toggle() }, icon(CHAT));
    this.badge = el('span', { class: 'badge', hidden: true, 'aria-hidden': 'true' });
    this.launcher.append(this.badge);
    const avatar = branding.avatar_url ? el('img', { src: branding.avatar_url, alt: '' }) : null;
    this.notice = el('div', { class: 'notice', role: 'status', hidden: true });
    this.log = el('div', { class: 'log', role: 'log', 'aria-live': 'polite', 'aria-relevant': 'additions', 'aria-label': 'Messages', tabindex: '0' });
    this.typingLine = el('div', { class: 'typing', 'aria-live': 'polite' });
    this.error = el('div', { class: 'error', role: 'alert' });
    this.input = el('textarea', { rows: '1', 'aria-label': 'Write a message', placeholder: 'Write a message…' });
    this.input.addEventListener('keydown', (e) => {
      if (e.key === 'Enter' && !e.shiftKey) {
        e.preventDefault();
        this.submit();
      }
    });
    this.input.addEventListener('input', () => this.on.typing());
    this.input.addEventListener('paste', (e) => {
      const files = [...(e.clipboardData?.files || [])];
      if (files.length) {
        e.preventDefault();
        this.on.files(files);
      }
    });
    this.picker = el('input', { type: 'file', class: 'sr-only', tabindex: '-1', 'aria-hidden': 'true', multiple: true,
      onchange: () => { this.on.files([...this.picker.files]); this.picker.value = ''; } });
    const attach = el('button', { type: 'button', class: 'attach', 'aria-label': 'Attach a file', onclick: () => this.picker.click() }, icon(CLIP));
    this.composer = el('form', { class: 'composer', onsubmit: (e) => { e.preventDefault(); this.submit(); } },
      attach, this.picker, this.input, el('button', { type: 'submit', text: 'Send' }));
    this.prechatForm = el('form', { class: 'prechat', hidden: true });
    this.panel = el('div', { class: 'panel', id: 'sb-panel', role: 'dialog', 'aria-label': `Chat with ${title}`, hidden: true },
      el('header', {}, avatar, el('h2', { text: title }),
        el('button', { class: 'close', type: 'button', 'aria-label': 'Close chat', onclick: () => this.close() }, '×')),
      this.notice, this.log, this.typingLine, this.error, this.prechatForm, this.composer);
    this.panel.addEventListener('keydown', (e) => {
      if (e.key === 'Escape') {
        e.stopPropagation();
        this.close();
      }
    });
    for (const t of ['dragenter', 'dragover']) {
      this.panel.addEventListener(t, (e) => { e.preventDefault(); this.panel.classList.add('dragging'); });
    }
    this.panel.addEventListener('dragleave', () => this.panel.classList.remove('dragging'));
    this.panel.addEventListener('drop', (e) => {
      e.preventDefault();
      this.panel.classList.remove('dragging');
      const files = [...(e.dataTransfer?.files || [])];
      if (files.length) this.on.files(files);
    });
    this.root.append(el('style', { text: css(branding.colour || '#2563eb') }), this.launcher, this.panel);
    if (branding.greeting) this.log.append(el('div', { class: 'msg greeting', text: branding.greeting }));
    document.body.append(this.host);
  }

  get isOpen() {
    return !this.panel.hidden;
  }

  toggle() {
    if (this.isOpen) this.close();
    else this.open();
  }

  open() {
    this.panel.hidden = false;
    this.launcher.setAttribute('aria-expanded', 'true');
    this.setUnread(0);
    this.scrollDown();
    const first = this.prechatForm.hidden ? this.input : this.prechatForm.querySelector('input');
    (first || this.input).focus();
    this.on.opened();
  }

  close() {
    this.panel.hidden = true;
    this.launcher.setAttribute('aria-expanded', 'false');
    this.launcher.focus();
  }

  setUnread(n) {
    this.unread = n;
    this.badge.hidden = n === 0;
    this.badge.textContent = String(n);
    const base = this.launcher.getAttribute('aria-label').replace(/ \(\d+ unread\)$/, '');
    this.launcher.setAttribute('aria-label', n ? `${base} (${n} unread)` : base);
  }

  submit() {
    const text = this.input.value.trim();
    if (!text) return;
    this.input.value = '';
    this.on.send(text);
  }

  showNotice(text) {
    this.notice.textContent = text || '';
    this.notice.hidden = !text;
  }

  showError(text) {
    this.error.textContent = text || '';
  }

  setTyping(name) {
    this.typingLine.textContent = name ? `${name} is typing…` : '';
  }

  /** The pre-chat form for `fields` ({name, email}: off|optional|required); resolves once sent. */
  askPrechat(fields, known) {
    this.composer.hidden = true;
    this.prechatForm.hidden = false;
    this.prechatForm.replaceChildren(el('p', { text: 'Before we start, tell us who you are.' }));
    const inputs = {};
    for (const f of ['name', 'email']) {
      if (fields[f] === 'off' || !fields[f]) continue;
      const required = fields[f] === 'required';
      inputs[f] = el('input', { name: f, type: f === 'email' ? 'email' : 'text', required, value: known[f] || '',
        autocomplete: f === 'email' ? 'email' : 'name' });
      this.prechatForm.append(el('label', {}, `${f === 'name' ? 'Your name' : 'Your email'}${required ? ' (required)' : ''}`, inputs[f]));
    }
    this.prechatForm.append(el('button', { type: 'submit', text: 'Start chatting' }));
    return new Promise((resolve) => {
      this.prechatForm.onsubmit = (e) => {
        e.preventDefault();
        const out = {};
        for (const [k, i] of Object.entries(inputs)) out[k] = i.value.trim() || null;
        this.prechatForm.hidden = true;
        this.composer.hidden = false;
        this.input.focus();
        resolve(out);
      };
    });
  }

  /** Adds or updates a message row: `who` {name, avatar_url} for others, null for the visitor. */
  upsert(m, who, mine) {
    let row = this.rows.get(m.id);
    const fresh = !row;
    if (fresh) {
      row = el('div', { class: `msg ${mine ? 'mine' : 'theirs'}`, 'data-seq': String(m.seq) });
      this.rows.set(m.id, row);
      const after = [...this.rows.values()].find((r) => r !== row && Number(r.dataset.seq) > m.seq && r.isConnected);
      if (after) this.log.insertBefore(row, after);
      else this.log.append(row);
    }
    const parts = [];
    if (!mine && who) {
      parts.push(el('div', { class: 'who' }, who.avatar_url ? el('img', { src: who.avatar_url, alt: '' }) : null, who.name));
    }
    if (m.deleted_at) parts.push(el('em', { text: 'Message deleted' }));
    else if (m.text) parts.push(el('div', { class: 'text', text: m.text }));
    for (const media of m.medias || []) {
      const type = media.content_type || '';
      const name = media.filename || media.name || 'file';
      if (type.startsWith('image/')) parts.push(el('img', { class: 'media', src: media.url, alt: name }));
      else parts.push(el('div', {}, el('a', { href: media.url, target: '_blank', rel: 'noopener', download: name, text: `📎 ${name}` })));
    }
    if (mine) parts.push(el('div', { class: 'meta', 'data-state': 'sent', text: 'Sent' }));
    row.replaceChildren(...parts);
    if (fresh && !mine && !this.isOpen) this.setUnread(this.unread + 1);
    this.scrollDown();
    return row;
  }

  /** Marks the visitor's messages up to `seq` as read by the team. */
  markRead(seq) {
    for (const row of this.rows.values()) {
      const meta = row.querySelector('.meta');
      if (meta && Number(row.dataset.seq) <= seq) {
        meta.textContent = 'Read';
        meta.dataset.state = 'read';
      }
    }
  }

  /** "This conversation has ended": shown once, at the end of the log. */
  ended(on) {
    this.log.querySelector('.ended')?.remove();
    if (on) this.log.append(el('div', { class: 'ended', role: 'status', text: 'This conversation has ended. Write to start a new one.' }));
    this.scrollDown();
  }

  scrollDown() {
    this.log.scrollTop = this.log.scrollHeight;
  }
}
