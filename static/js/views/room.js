// The open room's header (title, channel badges, who is online, participants, add a
// participant, join, invite links) and its composer.
//
// On a touch device Enter inserts a new line (a phone keyboard's return key is how people break
// lines; sending is the Send button); with a keyboard, Enter sends and Shift+Enter breaks.

import { $, h, channelBadges, channelLabel, roomTitle, setChildren } from './dom.js';

/** A touch screen without a fine pointer: phones and tablets. */
const touch = () => matchMedia('(pointer: coarse)').matches && !matchMedia('(pointer: fine)').matches;

const STATUS_LABELS = { open: 'Open', pending: 'Pending', snoozed: 'Snoozed', resolved: 'Resolved', closed: 'Closed' };

export class RoomView {
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
    this.operator = store.mode === 'operator';
    $('#add-person').hidden = !this.operator;
    $('#add-person').onsubmit = (ev) => this.addPerson(ev);
    $('#add-type').onchange = () => this.fillAccounts();
    $('#people').addEventListener('toggle', () => {
      if ($('#people').open) this.fillAccounts();
    });
    $('#join').onclick = () => this.join();
    $('#assign-form').hidden = !this.operator;
    $('#assign-form').onsubmit = (ev) => {
      ev.preventDefault();
      this.assign($('#assign-agent').value.trim());
    };
    $('#unassign').onclick = () => this.assign(null);
    $('#status-actions').hidden = !this.operator;
    $('#resolve').onclick = () => this.setStatus('resolved');
    $('#reopen').onclick = () => this.setStatus('open');
    this.text = $('#composer-text');
    $('#composer').onsubmit = (ev) => {
      ev.preventDefault();
      this.send();
    };
    this.text.addEventListener('keydown', (ev) => {
      if (ev.key === 'Enter' && !ev.shiftKey && !ev.isComposing && !touch()) {
        ev.preventDefault();
        this.send();
      }
    });
    this.text.addEventListener('input', () => {
      this.grow();
      if (this.roomId && this.text.value.trim()) this.chat.typing(this.roomId);
    });
  }

  show(roomId) {
    const changed = this.roomId !== roomId;
    this.roomId = roomId;
    $('#empty').hidden = !!roomId;
    $('#room').hidden = !roomId;
    if (!roomId) return;
    if (changed) {
      $('#add-result').textContent = '';
      $('#assign-agent').value = '';
      $('#people').open = false;
      this.text.value = '';
      this.grow();
    }
    // Opening a room (again) shows its newest message.
    this.messages.pinToBottom();
    this.messages.show(roomId);
    this.render();
  }

  send() {
    const text = this.text.value;
    if (!this.roomId || !text.trim()) return;
    this.messages.pinToBottom();
    this.chat.send(this.roomId, text);
    this.text.value = '';
    this.grow();
    this.text.focus();
  }

  grow() {
    this.text.style.height = 'auto';
    this.text.style.height = `${Math.min(this.text.scrollHeight, 160)}px`;
  }

  render() {
    const s = this.store;
    const r = s.room(this.roomId);
    if (!r) return;
    const title = roomTitle(r, s.mode);
    if ($('#room-title').textContent !== title) $('#room-title').textContent = title;
    const channels = [...s.channels(r)];
    const badges = $('#room-badges');
    if (badges.dataset.sig !== channels.join()) {
      badges.dataset.sig = channels.join();
      setChildren(badges, channelBadges(channels));
    }
    this.renderOnline(r);
    this.renderOwner(r);
    this.renderStatus(r);
    this.renderPeople(r);
    const denied = r.access !== 'ok';
    const closed = r.status === 'closed';
    this.text.disabled = denied || closed;
    this.text.placeholder = denied
      ? r.access === 'gone' ? 'This conversation was deleted.' : 'You no longer have access to this conversation.'
      : closed
        ? 'This conversation is closed.'
        : this.placeholder();
    this.messages.render();
  }

  /** Short enough to fit a phone's composer; the Enter hint only where Enter sends. */
  placeholder() {
    if (touch()) return 'Message';
    return matchMedia('(max-width: 720px)').matches ? 'Message (Enter to send)' : 'Write a message — Enter to send, Shift+Enter for a new line';
  }

  renderOnline(r) {
    const others = [...r.online].filter((id) => id !== this.store.identity).sort();
    let text = others.length ? `Online: ${others.join(', ')}` : 'Nobody else is online';
    // An end user sees the team, never its members' sign-in identities.
    if (!this.operator) text = others.length ? 'Support is online' : 'Support is away';
    const el = $('#online');
    if (el.textContent !== text) {
      setChildren(el, h('span', { class: `dot${others.length ? ' on' : ''}`, 'aria-hidden': 'true' }), text);
    }
  }

  renderOwner(r) {
    const el = $('#owner');
    // Assignment is the team's business (and an end user's token does not see it).
    el.hidden = !this.operator;
    const text = r.owner ? `Assigned to ${r.owner}` : 'Unassigned';
    if (el.textContent !== text) el.textContent = text;
    el.toggleAttribute('data-assigned', !!r.owner);
    $('#unassign').hidden = !this.operator || !r.owner;
  }

  renderStatus(r) {
    const el = $('#status');
    el.hidden = !this.operator;
    const text = STATUS_LABELS[r.status] || r.status;
    if (el.textContent !== text) el.textContent = text;
    el.dataset.status = r.status;
    // Resolve what is still being worked on; reopen what is parked or done; closed is final.
    $('#resolve').hidden = !['open', 'pending'].includes(r.status);
    $('#reopen').hidden = !['snoozed', 'resolved'].includes(r.status);
  }

  async setStatus(status) {
    try {
      await this.chat.directory.setStatus(this.roomId, status);
    } catch (e) {
      this.store.setNotice(`Could not ${status === 'open' ? 'reopen' : 'resolve'}: ${e.message}`);
    }
  }

  async assign(agent) {
    if (agent === '') {
      $('#assign-agent').focus();
      return;
    }
    try {
      await this.chat.directory.assign(this.roomId, agent);
      $('#assign-agent').value = '';
    } catch (e) {
      this.store.setNotice(`Could not ${agent ? 'assign' : 'unassign'}: ${e.message}`);
    }
  }

  renderPeople(r) {
    const list = [...r.participants.values()];
    const summary = $('#people summary');
    const label = this.operator ? `Participants (${list.length})` : 'Participants';
    if (summary.textContent !== label) summary.textContent = label;
    $('#people').hidden = !this.operator;
    const joined = list.some((p) => p.address.type === 'webchat' && p.address.target === this.store.identity);
    $('#join').hidden = !this.operator || joined || r.access !== 'ok';
    const ul = $('#people-list');
    const sig = JSON.stringify(list.map((p) => [p.id, p.address, [...r.online].includes(p.address.target)]));
    if (ul.dataset.sig === sig) return;
    ul.dataset.sig = sig;
    setChildren(
      ul,
      list.map((p) => {
        const a = p.address;
        const me = a.type === 'webchat' && a.target === this.store.identity;
        const invite =
          this.operator && a.type === 'webchat' && !me
            ? h('button', { type: 'button', class: 'link', onclick: (ev) => this.invite(ev, r.id, a.target) }, 'Invite link')
            : null;
        return h(
          'li',
          {},
          h('span', { class: 'badge' }, channelLabel(a.type)),
          ' ',
          h('bdi', {}, a.name && a.name !== a.target ? `${a.name} (${a.target})` : a.target),
          me ? ' — you' : '',
          r.online.has(a.target) && a.type === 'webchat' ? h('span', { class: 'dot on', title: 'online' }) : null,
          invite ? ' ' : null,
          invite,
        );
      }),
    );
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
    const type = $('#add-type').value;
    const select = $('#add-account');
    const webchat = type === 'webchat';
    select.hidden = webchat;
    $('#add-account-label').hidden = webchat;
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
      out.textContent = `Not added: ${e.message}`;
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
