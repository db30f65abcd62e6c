// The WhatsApp template picker: when the customer's 24-hour window is closed (the participant
// API's `window_expires_at` is in the past), free text cannot reach them, so the composer shows
// a notice and offers "Send a template": the account's approved templates
// (`GET /v1.0/conversation_accounts/{id}/templates`, name, language and a body preview), one
// field per `{{n}}` placeholder, and `POST /v1.0/conversations/{id}/messages {template}`.
// A native <select> and labelled fields keep it keyboard- and screen-reader-usable; failures
// are said in words. The composer (composer.js) decides what the text box does meanwhile; the
// server still refuses free text on its own (`window_closed`).

import { $, h, setChildren } from './dom.js';

const WINDOWED = new Set(['whatsapp', 'messenger', 'instagram']);

/**
 * Whether `r`'s customers can only be reached with a WhatsApp template now: some customer's
 * WhatsApp window is closed and no customer has an endpoint free text may go to. Gives
 * `{accountId, expiredAt}` of the closed WhatsApp endpoint, else null.
 */
export function closedWhatsapp(store, r, now = Date.now()) {
  let closed = null;
  for (const p of r.participants.values()) {
    if (store.isStaff(r, p)) continue;
    const last = p.reply_via || { address: p.address, account_id: p.account_id };
    const endpoints = [{ address: p.address, account_id: p.account_id }, ...(p.linked || [])];
    // An SMS number or a webchat next to it takes free text at any time.
    if (endpoints.some((e) => !WINDOWED.has(e.address.type))) return null;
    const until = p.window_expires_at ? Date.parse(p.window_expires_at) : 0;
    if (until > now) return null;
    if (!closed && last.address.type === 'whatsapp' && last.account_id) closed = { accountId: last.account_id, expiredAt: p.window_expires_at || null };
  }
  return closed;
}

/** `body` with `{{n}}` replaced by `values[n-1]` (an empty value keeps its placeholder). */
export function fill(body, values) {
  return body.replace(/\{\{(\d+)\}\}/g, (all, n) => values[Number(n) - 1] || all);
}

const dateFmt = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });

export class TemplatePicker {
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
    this.state = null; // closedWhatsapp(...) of the room shown
    this.lists = new Map(); // account id -> templates (a promise while loading)
    this.list = [];
    this.el = $('#window-closed');
    this.form = $('#tpl-form');
    this.select = $('#tpl-select');
    $('#tpl-open').onclick = () => this.open();
    $('#tpl-cancel').onclick = () => this.close(true);
    this.select.onchange = () => this.pick();
    this.form.onsubmit = (ev) => {
      ev.preventDefault();
      this.send();
    };
    this.form.addEventListener('keydown', (ev) => {
      if (ev.key === 'Escape') {
        ev.preventDefault();
        this.close(true);
      }
    });
  }

  /** Another room: the picker folded. */
  reset(roomId) {
    this.roomId = roomId;
    this.state = null;
    this.close(false);
  }

  /** Shows or hides the notice for room `r`; answers whether the window is closed. */
  render(r) {
    const usable = this.store.mode === 'operator' && this.chat.api && r.access === 'ok' && r.status !== 'closed';
    const state = usable ? closedWhatsapp(this.store, r) : null;
    const sig = JSON.stringify(state);
    if (sig !== JSON.stringify(this.state)) {
      this.state = state;
      this.el.hidden = !state;
      if (!state) this.close(false);
      else {
        const when = state.expiredAt ? ` on ${dateFmt.format(new Date(state.expiredAt))}` : '';
        $('#window-text').textContent =
          `The 24-hour WhatsApp window closed${when}: free text no longer reaches this customer. Send an approved template; their answer opens the window again.`;
      }
    }
    return !!state;
  }

  async templates(accountId) {
    if (!this.lists.has(accountId)) {
      const p = this.chat.api.call('GET', `/conversation_accounts/${accountId}/templates`).then((res) => res.result || []);
      this.lists.set(accountId, p);
      p.catch(() => this.lists.delete(accountId));
    }
    return this.lists.get(accountId);
  }

  async open() {
    if (!this.state) return;
    $('#tpl-open').hidden = true;
    this.form.hidden = false;
    this.error('');
    setChildren(this.select, h('option', { value: '' }, 'Loading templates…'));
    this.select.disabled = true;
    try {
      this.list = await this.templates(this.state.accountId);
    } catch (e) {
      this.list = [];
      setChildren(this.select, h('option', { value: '' }, 'No templates'));
      this.error(`Could not load the templates: ${e.message || e.code}`);
      $('#tpl-send').disabled = true;
      return;
    }
    this.select.disabled = false;
    setChildren(
      this.select,
      this.list.length ? h('option', { value: '' }, 'Choose a template…') : h('option', { value: '' }, 'This account has no approved templates'),
      this.list.map((t, i) => h('option', { value: String(i) }, `${t.name} (${t.language})`)),
    );
    this.pick();
    this.select.focus();
  }

  /** Folds the picker; `focus` puts the keyboard back on its button. */
  close(focus) {
    this.form.hidden = true;
    $('#tpl-open').hidden = false;
    this.list = [];
    setChildren($('#tpl-params'));
    $('#tpl-preview').textContent = '';
    this.error('');
    if (focus && !this.el.hidden) $('#tpl-open').focus();
  }

  get chosen() {
    return this.select.value === '' ? null : this.list[Number(this.select.value)];
  }

  /** One field per placeholder of the chosen template, and its preview. */
  pick() {
    const t = this.chosen;
    this.error('');
    $('#tpl-send').disabled = !t;
    const fields = [];
    for (let i = 1; t && i <= t.parameters; i++) {
      const id = `tpl-param-${i}`;
      const input = h('input', { id, type: 'text', maxlength: '1000', 'aria-required': 'true', dir: 'auto', autocomplete: 'off' });
      input.addEventListener('input', () => {
        this.error('');
        this.preview();
      });
      fields.push(h('div', { class: 'tpl-field' }, h('label', { for: id }, `Parameter {{${i}}}`), input));
    }
    setChildren($('#tpl-params'), fields);
    this.preview();
  }

  values() {
    return [...document.querySelectorAll('#tpl-params input')].map((i) => i.value.trim());
  }

  preview() {
    const t = this.chosen;
    $('#tpl-preview').textContent = t ? fill(t.body, this.values()) : '';
  }

  error(text) {
    const el = $('#tpl-error');
    el.textContent = text;
    el.hidden = !text;
  }

  async send() {
    const t = this.chosen;
    if (!t) {
      this.error('Choose a template first.');
      this.select.focus();
      return;
    }
    const values = this.values();
    const empty = values.findIndex((v) => !v);
    if (empty >= 0) {
      this.error(`Fill in parameter {{${empty + 1}}}: the template needs a value there.`);
      $(`#tpl-param-${empty + 1}`).focus();
      return;
    }
    const roomId = this.roomId;
    const button = $('#tpl-send');
    button.disabled = true;
    this.error('');
    try {
      const m = await this.chat.api.call('POST', `/conversations/${roomId}/messages`, {
        template: { name: t.name, language: t.language, parameters: values },
      });
      this.messages.pinToBottom();
      if (m && m.id) this.store.addMessages(roomId, [m]);
      this.chat.announce(`Template ${t.name} sent`);
      this.close(true);
    } catch (e) {
      this.error(`The template was not sent: ${e.message || e.code}`);
    } finally {
      button.disabled = !this.chosen;
    }
  }
}
