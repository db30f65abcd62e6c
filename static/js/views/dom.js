// Small DOM helpers shared by the views. Text is always set as text (never as HTML).

/**
 * h('button', {class: 'x', onclick: fn, 'aria-label': 'y'}, 'text', child)
 * Attributes whose value is false/null/undefined are left out; `on*` functions become listeners.
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === false || v === null || v === undefined) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k === 'value') el.value = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

/** Replaces the children of `el`. */
export function setChildren(el, ...children) {
  el.replaceChildren();
  append(el, children);
}

export const $ = (sel, root = document) => root.querySelector(sel);

const CHANNELS = {
  webchat: { label: 'Chat', cls: 'chat' },
  tel: { label: 'SMS', cls: 'sms' },
  line: { label: 'LINE', cls: 'line' },
  whatsapp: { label: 'WhatsApp', cls: 'whatsapp' },
  telegram: { label: 'Telegram', cls: 'telegram' },
};

/** Channel badges for a set of address types (channels first, then "Chat"; "Chat" when empty). */
export function channelBadges(types) {
  const order = ['tel', 'whatsapp', 'line', 'telegram', 'webchat'];
  const have = new Set(types);
  const list = order.filter((t) => have.has(t));
  if (!list.length) list.push('webchat');
  return list.map((t) => h('span', { class: `badge ch-${CHANNELS[t].cls}` }, CHANNELS[t].label));
}

export function channelLabel(type) {
  return (CHANNELS[type] || { label: type }).label;
}

const timeFmt = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit' });
const dayFmt = new Intl.DateTimeFormat(undefined, { month: 'short', day: 'numeric' });
const fullFmt = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });

/** "14:05" today, "Mar 3" before; with the full date as a tooltip. */
export function timeEl(iso) {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return h('time', {}, '');
  const today = new Date().toDateString() === d.toDateString();
  return h('time', { datetime: d.toISOString(), title: fullFmt.format(d) }, today ? timeFmt.format(d) : dayFmt.format(d));
}

export function shortId(id) {
  return String(id).slice(-6);
}

/** Name shown for a room. */
export function roomTitle(r) {
  return r.name || `Conversation …${shortId(r.id)}`;
}

/** Only http(s) URLs are ever put into src/href. */
export function safeUrl(url) {
  try {
    const u = new URL(url, location.href);
    return u.protocol === 'http:' || u.protocol === 'https:' ? u.href : null;
  } catch {
    return null;
  }
}
