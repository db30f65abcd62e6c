// The contact panel on the right of the room (staff): the customer's contact — name, email,
// addresses with their channel, metadata and other conversations (`/v1.0/contacts`) — the
// people in the room (with end-user invite links), "Join", "Add by phone number or address"
// and "Merge contact". Writes (adding, merging, invite links) take an API key, so they are shown
// to API-key sign-ins only; a token the contacts API refuses sees the people list alone.

import { $, h, channelLabel, roomTitle, setChildren } from './dom.js';


export class ContactPanel {
  /** @param {{store: import('../store.js').Store, chat: import('../chat.js').Chat}} o */
  constructor({ store, chat }) {
    this.store = store;
    this.chat = chat;
    this.onOpen = () => {};
    this.roomId = null;
    this.contactId = null;
    this.contactReq = 0;
    this.staff = store.mode === 'operator';
    this.key = store.role === 'key';
    $('#people-toggle').hidden = !this.staff;
    $('#people-toggle').onclick = () => (this.isOpen() ? this.close() : this.open());
    $('#panel-close').onclick = () => this.close();
    $('#add-person').hidden = !this.key;
    $('#add-person').onsubmit = (ev) => this.addPerson(ev);
    $('#add-type').onchange = () => this.fillAccounts();
    $('#join').onclick = () => this.join();
    $('#merge').onsubmit = (ev) => this.merge(ev);
    let t = 0;
    $('#merge-q').addEventListener('input', () => {
      clearTimeout(t);
      t = setTimeout(() => this.findMerge(), 250);
    });
  }

  isOpen() {
    return !$('#panel').hidden;
  }

  open() {
    $('#panel').hidden = false;
    document.body.classList.add('panel-open');
    $('#people-toggle').setAttribute('aria-expanded', 'true');
    // Accounts may have been added since: read them again.
    if (this.key) this.chat.directory.accounts(true);
    this.fillAccounts();
    this.contactId = null; // fetched afresh
    const r = this.store.room(this.roomId);
    if (r) this.render(r);
    $('#panel-close').focus();
  }

  close() {
    $('#panel').hidden = true;
    document.body.classList.remove('panel-open');
    $('#people-toggle').setAttribute('aria-expanded', 'false');
    if (!$('#room').hidden) $('#people-toggle').focus();
  }

  /** A room was opened (or none): forget the previous room's results. */
  show(roomId) {
    if (this.roomId === roomId) return;
    this.roomId = roomId;
    this.contactId = null;
    $('#add-result').textContent = '';
    $('#merge-result').textContent = '';
    $('#people-list').dataset.sig = '';
    setChildren($('#contact'));
    if (!roomId && this.isOpen()) this.close();
  }

  /** The room's customer: its first participant who is not staff. */
  customer(r) {
    return [...r.participants.values()].find((p) => !this.store.isStaff(r, p) && p.contact_id) || null;
  }

  render(r) {
    if (!this.staff) return;
    const list = [...r.participants.values()];
    const toggle = `Contact (${list.length})`;
    if ($('#people-toggle').textContent !== toggle) $('#people-toggle').textContent = toggle;
    if (!this.isOpen()) return;
    const joined = list.some((p) => r.myPids.has(p.id) || (p.address.type === 'webchat' && p.address.target === this.store.identity));
    $('#join').hidden = !this.key || joined || r.access !== 'ok';
    this.renderPeople(r, list);
    const c = this.customer(r);
    if (c && c.contact_id !== this.contactId) this.loadContact(c.contact_id);
    if (!c && this.contactId !== 'none') {
      this.contactId = 'none';
      setChildren($('#contact'), h('p', { class: 'muted' }, 'No customer in this conversation yet.'));
      $('#merge').hidden = true;
    }
  }

  renderPeople(r, list) {
    const ul = $('#people-list');
    const sig = JSON.stringify(list.map((p) => [p.id, p.address, r.online.has(p.address.target)]));
    if (ul.dataset.sig === sig) return;
    ul.dataset.sig = sig;
    setChildren(
      ul,
      list.map((p) => {
        const a = p.address;
        const me = r.myPids.has(p.id) || (a.type === 'webchat' && a.target === this.store.identity);
        const invite =
          this.key && a.type === 'webchat' && !me && !this.store.isStaff(r, p)
            ? h('button', { type: 'button', class: 'link', onclick: (ev) => this.invite(ev, r.id, a.target) }, 'Invite link')
            : null;
        return h(
          'li',
          {},
          h('span', { class: 'badge' }, channelLabel(a.type)),
          ' ',
          h('bdi', {}, a.name && a.name !== a.target ? `${a.name} (${a.target})` : a.target),
          me ? ' — you' : '',
          r.online.has(a.target) ? h('span', { class: 'dot on', title: 'online', role: 'img', 'aria-label': 'online' }) : null,
          invite ? ' ' : null,
          invite,
        );
      }),
    );
  }

  async loadContact(id) {
    this.contactId = id;
    const req = ++this.contactReq;
    const el = $('#contact');
    try {
      const [c, convs] = await Promise.all([this.chat.api.contact(id), this.chat.api.contactConversations(id).catch(() => ({ result: [] }))]);
      if (req !== this.contactReq) return;
      const others = (convs.result || []).filter((x) => x.id !== this.roomId);
      const meta = Object.entries(c.metadata || {});
      setChildren(
        el,
        h('p', { class: 'contact-name', dir: 'auto' }, c.name || 'Unnamed contact'),
        c.email ? h('p', { class: 'muted' }, c.email) : null,
        h('h3', {}, 'Addresses'),
        h(
          'ul',
          { class: 'addresses' },
          (c.addresses || []).map((a) =>
            h('li', {}, h('span', { class: 'badge' }, channelLabel(a.type)), ' ', h('bdi', {}, a.target)),
          ),
        ),
        meta.length ? h('h3', {}, 'Details') : null,
        meta.length ? h('dl', { class: 'meta-list' }, meta.map(([k, v]) => [h('dt', {}, k), h('dd', { dir: 'auto' }, typeof v === 'string' ? v : JSON.stringify(v))])) : null,
        h('h3', {}, 'Other conversations'),
        others.length
          ? h(
              'ul',
              { class: 'others' },
              others.map((x) => {
                this.store.upsertConversation(x);
                const label = `${roomTitle({ name: x.name, id: x.id })} (${x.status || 'open'})`;
                return h('li', {}, h('button', { type: 'button', class: 'link', onclick: () => this.onOpen(x.id) }, label));
              }),
            )
          : h('p', { class: 'muted' }, 'None.'),
      );
      $('#merge').hidden = !this.key;
    } catch (e) {
      if (req !== this.contactReq) return;
      // Agents' tokens may not read contacts: the people list stays.
      setChildren(el, e.status === 403 ? null : h('p', { class: 'error' }, `Could not load the contact: ${e.message}`));
      $('#merge').hidden = true;
    }
  }

  async findMerge() {
    const q = $('#merge-q').value.trim();
    const select = $('#merge-pick');
    if (!q) return setChildren(select);
    try {
      const res = await this.chat.api.findContacts(q);
      const list = (res.result || []).filter((c) => c.id !== this.contactId);
      setChildren(
        select,
        list.length
          ? list.map((c) => h('option', { value: c.id }, `${c.name || 'Unnamed'} — ${(c.addresses || []).map((a) => a.target).join(', ')}`))
          : h('option', { value: '' }, 'No other contact found'),
      );
    } catch (e) {
      $('#merge-result').textContent = `Could not search: ${e.message}`;
    }
    return undefined;
  }

  async merge(ev) {
    ev.preventDefault();
    const other = $('#merge-pick').value;
    const out = $('#merge-result');
    if (!other || !this.contactId || this.contactId === 'none') {
      out.textContent = 'Find the contact to merge first.';
      $('#merge-q').focus();
      return;
    }
    try {
      const res = await this.chat.api.mergeContact(this.contactId, other);
      out.textContent = `Merged into ${res.contact.name || 'this contact'}.`;
      this.loadContact(res.contact.id);
    } catch (e) {
      out.textContent = `Not merged: ${e.message}`;
    }
  }

  async invite(ev, roomId, identity) {
    const li = ev.target.closest('li');
    try {
      const url = await this.chat.directory.inviteLink(roomId, identity);
      const old = li.querySelector('input');
      if (old) old.remove();
      const input = h('input', { type: 'text', readonly: true, value: url, 'aria-label': `Invite link for ${identity}`, class: 'invite' });
      li.append(input);
      input.focus();
      input.select();
    } catch (e) {
      $('#add-result').textContent = `Could not mint a link: ${e.message}`;
    }
  }

  /** Non-webchat addresses are reached through one of the tenant's accounts of that channel. */
  async fillAccounts() {
    if (!this.key) return;
    const type = $('#add-type').value;
    const select = $('#add-account');
    const webchat = type === 'webchat';
    select.hidden = webchat;
    $('#add-account-label').hidden = webchat;
    $('#add-target').placeholder = webchat ? 'alice' : type === 'tel' || type === 'whatsapp' ? '+15551234567' : 'user id';
    if (webchat) return;
    const accounts = (await this.chat.directory.accounts()).filter((a) => a.type === type);
    if ($('#add-type').value !== type) return;
    setChildren(
      select,
      accounts.length
        ? accounts.map((a) => h('option', { value: a.id }, `${a.name || a.provider} (${a.address})`))
        : h('option', { value: '' }, `No ${channelLabel(type)} account configured`),
    );
  }

  async addPerson(ev) {
    ev.preventDefault();
    const out = $('#add-result');
    const type = $('#add-type').value;
    const target = $('#add-target').value.trim();
    const name = $('#add-name').value.trim();
    const accountId = type === 'webchat' ? null : $('#add-account').value;
    if (!target) {
      out.textContent = 'Enter an address.';
      $('#add-target').focus();
      return;
    }
    if ((type === 'tel' || type === 'whatsapp') && !/^\+[1-9]\d{7,14}$/.test(target.replace(/[\s().-]/g, ''))) {
      out.textContent = 'Enter the number in international form, with + and the country code (+15551234567).';
      $('#add-target').focus();
      return;
    }
    if (type !== 'webchat' && !accountId) {
      out.textContent = `Set up an account for ${channelLabel(type)} first (POST /v1.0/conversation_accounts).`;
      return;
    }
    const button = ev.target.querySelector('button[type=submit]');
    button.disabled = true;
    try {
      await this.chat.directory.addParticipant(this.roomId, { type, target, name }, accountId);
      out.textContent = `Added ${name || target} (${channelLabel(type)}).`;
      $('#add-target').value = '';
      $('#add-name').value = '';
    } catch (e) {
      out.textContent = e.status === 409 ? `${target} is already in this conversation.` : `Not added: ${e.message}`;
    } finally {
      button.disabled = false;
    }
  }

  async join() {
    try {
      await this.chat.directory.join(this.roomId);
    } catch (e) {
      $('#add-result').textContent = `Could not join: ${e.message}`;
    }
  }
}
