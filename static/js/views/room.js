// The open room's header: title, channel badges, who is online, the status with Resolve,
// Reopen and Snooze (presets), and the assignee with the agent picker (agents with their
// presence, from `GET /v1.0/agents`; a free-text field where the server has no agent list).
// The composer (composer.js), the contact panel (contact.js) and the messages (messages.js)
// are their own views; this one shows and hides them with the room.

import { $, h, channelBadges, roomTitle, setChildren } from './dom.js';

const STATUS_LABELS = { open: 'Open', pending: 'Pending', snoozed: 'Snoozed', resolved: 'Resolved', closed: 'Closed' };

/** When a snooze preset ends, from now (local time). */
export function snoozeUntil(preset, now = new Date()) {
  const d = new Date(now);
  if (preset === '1h') return new Date(d.getTime() + 3600_000);
  if (preset === '4h') return new Date(d.getTime() + 4 * 3600_000);
  d.setHours(9, 0, 0, 0);
  if (preset === 'tomorrow') d.setDate(d.getDate() + 1);
  else if (preset === 'week') d.setDate(d.getDate() + (((8 - d.getDay()) % 7) || 7));
  return d;
}

const untilFmt = new Intl.DateTimeFormat(undefined, { weekday: 'short', hour: '2-digit', minute: '2-digit' });

export class RoomView {
  /**
   * @param {object} o
   * @param {import('../store.js').Store} o.store
   * @param {import('../chat.js').Chat} o.chat
   * @param {import('./messages.js').MessagesView} o.messages
   * @param {import('./composer.js').Composer} o.composer
   * @param {import('./contact.js').ContactPanel} o.panel
   */
  constructor({ store, chat, messages, composer, panel }) {
    this.store = store;
    this.chat = chat;
    this.messages = messages;
    this.composer = composer;
    this.panel = panel;
    this.roomId = null;
    this.operator = store.mode === 'operator';
    // Every staff sign-in assigns: API keys and admins any room, an agent the rooms it may act
    // on (its own and unassigned ones), to itself, another agent or nobody.
    this.canAssign = ['key', 'admin', 'agent'].includes(store.role);
    $('#assign-form').hidden = !this.canAssign;
    $('#assign-form').onsubmit = (ev) => {
      ev.preventDefault();
      this.assign($('#assign-agent').value);
    };
    $('#unassign').onclick = () => this.assign(null);
    $('#status-actions').hidden = !this.operator;
    $('#resolve').onclick = () => this.setStatus('resolved');
    $('#reopen').onclick = () => this.setStatus('open');
    $('#snooze').onchange = () => {
      const preset = $('#snooze').value;
      $('#snooze').value = '';
      if (preset) this.setStatus('snoozed', snoozeUntil(preset).toISOString());
    };
  }

  show(roomId) {
    const changed = this.roomId !== roomId;
    this.roomId = roomId;
    $('#empty').hidden = !!roomId;
    $('#room').hidden = !roomId;
    this.panel.show(roomId);
    if (!roomId) return;
    if (changed) {
      this.pickerSig = '';
      this.composer.reset(roomId);
    }
    // Opening a room (again) shows its newest message.
    this.messages.pinToBottom();
    this.messages.show(roomId);
    this.render();
  }

  render() {
    const s = this.store;
    const r = s.room(this.roomId);
    if (!r) return;
    const title = roomTitle(r, s.mode, s.customerName(r));
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
    this.panel.render(r);
    this.composer.render(r);
    this.messages.render();
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

  agentName(identity) {
    const a = this.store.agents.get(identity);
    return (a && a.name) || identity;
  }

  renderOwner(r) {
    const s = this.store;
    const el = $('#owner');
    // Assignment is the team's business (and an end user's token does not see it).
    el.hidden = !this.operator;
    const who = r.owner === s.identity ? 'you' : r.owner ? this.agentName(r.owner) : '';
    const text = r.owner ? `Assigned to ${who}` : 'Unassigned';
    if (el.textContent !== text) el.textContent = text;
    el.toggleAttribute('data-assigned', !!r.owner);
    $('#unassign').hidden = !this.canAssign || !r.owner;
    if (this.canAssign) this.renderPicker(r);
  }

  /** The picker: every agent with a presence mark, online first; the current owner selected. */
  renderPicker(r) {
    const s = this.store;
    const agents = [...s.agents.values()].sort((a, b) => b.online - a.online || String(a.name).localeCompare(String(b.name)));
    const sig = JSON.stringify([r.id, r.owner, agents.map((a) => [a.identity, a.name, a.online])]);
    if (this.pickerSig === sig) return;
    this.pickerSig = sig;
    const select = $('#assign-agent');
    const options = agents.map((a) =>
      h('option', { value: a.identity, selected: a.identity === r.owner }, `${a.online ? '● ' : '○ '}${a.name || a.identity} — ${a.online ? 'online' : 'away'}`),
    );
    if (r.owner && !s.agents.has(r.owner)) options.push(h('option', { value: r.owner, selected: true }, r.owner));
    setChildren(select, h('option', { value: '', selected: !r.owner }, agents.length ? 'Choose an agent…' : 'No agents yet'), options);
  }

  renderStatus(r) {
    const el = $('#status');
    el.hidden = !this.operator;
    let text = STATUS_LABELS[r.status] || r.status;
    if (r.status === 'snoozed' && r.snoozedUntil) text = `Snoozed until ${untilFmt.format(new Date(r.snoozedUntil))}`;
    if (el.textContent !== text) el.textContent = text;
    el.dataset.status = r.status;
    // Resolve what is still being worked on; reopen what is parked or done; closed is final.
    $('#resolve').hidden = !['open', 'pending'].includes(r.status);
    $('#reopen').hidden = !['snoozed', 'resolved'].includes(r.status);
    $('#snooze').hidden = !['open', 'pending'].includes(r.status);
  }

  async setStatus(status, snoozedUntil) {
    const verb = { open: 'reopen', resolved: 'resolve', snoozed: 'snooze' }[status] || 'change';
    try {
      await this.chat.directory.setStatus(this.roomId, status, snoozedUntil);
      this.chat.announce(status === 'snoozed' ? 'Snoozed' : STATUS_LABELS[status]);
    } catch (e) {
      this.store.setNotice(`Could not ${verb}: ${e.message}`);
    }
  }

  async assign(agent) {
    if (agent === '') {
      $('#assign-agent').focus();
      return;
    }
    try {
      await this.chat.directory.assign(this.roomId, agent);
    } catch (e) {
      this.store.setNotice(`Could not ${agent ? 'assign' : 'unassign'}: ${e.message}`);
    }
  }
}
