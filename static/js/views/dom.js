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
  for (const c of children.flat(Infinity)) {
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
  email: { label: 'Email', cls: 'email' },
  agent: { label: 'Agent', cls: 'agent' },
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

/**
 * Name shown for a room: its name, else (staff) its customer's name or address; an end user
 * never sees ids ("Support chat" when it has no name).
 */
export function roomTitle(r, mode = 'operator', customer = '') {
  return r.name || (mode === 'user' ? 'Support chat' : customer || `Conversation …${shortId(r.id)}`);
}

/** Local calendar day of an ISO time ("2026-12-03"), for day separators. */
export function dayKey(iso) {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return '';
  return `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, '0')}-${String(d.getDate()).padStart(2, '0')}`;
}

const sepFmt = new Intl.DateTimeFormat(undefined, { weekday: 'long', month: 'long', day: 'numeric', year: 'numeric' });

/** "Today", "Yesterday", else the full date: the text of a day separator. */
export function dayLabel(iso) {
  const d = new Date(iso);
  const key = dayKey(iso);
  if (key === dayKey(new Date().toISOString())) return 'Today';
  if (key === dayKey(new Date(Date.now() - 86400000).toISOString())) return 'Yesterday';
  return sepFmt.format(d);
}

const RTL_LETTER = /[\p{Script=Arabic}\p{Script=Hebrew}\p{Script=Syriac}\p{Script=Thaana}\p{Script=Nko}]/u;

/**
 * "rtl" or "ltr" from the first letter of `text` (as `dir="auto"` would decide), for a line
 * that starts with something else (the author's name before a preview).
 */
export function textDir(text) {
  const first = /\p{L}/u.exec(text || '');
  return first && RTL_LETTER.test(first[0]) ? 'rtl' : 'ltr';
}

/** Full date and time, for accessible names. */
export function fullTime(iso) {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? '' : fullFmt.format(d);
}

// http(s) URLs in message text; trailing punctuation is left out of the link.
const URL_RE = /\bhttps?:\/\/[^\s<>"]+/gi;
const TRAILING = /[.,;:!?)\]}'»”]+$/;

/**
 * Message text as nodes: text nodes, and <a> elements for http(s) URLs (target=_blank,
 * rel="noopener noreferrer"). Built with DOM APIs only: the user's text is never parsed as HTML,
 * and anything that is not http(s) after parsing stays plain text.
 */
export function linkify(text) {
  const out = [];
  let at = 0;
  for (const match of text.matchAll(URL_RE)) {
    let raw = match[0];
    const trail = TRAILING.exec(raw);
    // Keep a closing bracket that belongs to the URL, as in https://en.wikipedia.org/wiki/X_(Y).
    if (trail && !(trail[0] === ')' && raw.includes('('))) raw = raw.slice(0, raw.length - trail[0].length);
    const url = safeUrl(raw);
    if (!url) continue;
    if (match.index > at) out.push(document.createTextNode(text.slice(at, match.index)));
    out.push(h('a', { href: url, target: '_blank', rel: 'noopener noreferrer', class: 'link-out' }, raw));
    at = match.index + raw.length;
  }
  if (at < text.length) out.push(document.createTextNode(text.slice(at)));
  return out;
}

/** Only http(s) URLs are ever put into src/href. */
export function safeUrl(url, base = location.href) {
  try {
    const u = new URL(url, base);
    return u.protocol === 'http:' || u.protocol === 'https:' ? u.href : null;
  } catch {
    return null;
  }
}
