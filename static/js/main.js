// Entry point: picks the mode — staff signed in with email and password (session.js), an admin
// with an API key, or an end user with a `#token=` link (enduser.js) — builds the store,
// controller and views, and routes store changes to the views.

import { Api } from './api.js';
import { Chat } from './chat.js';
import { hasLeft, leave, startUser, userToken } from './enduser.js';
import { Notifier } from './notify.js';
import { Session } from './session.js';
import { Store } from './store.js';
import { ContactPanel } from './views/contact.js';
import { Composer } from './views/composer.js';
import { $ } from './views/dom.js';
import { FiltersView } from './views/filters.js';
import { ListView } from './views/list.js';
import { hideLogin, showInvite, showLogin } from './views/login.js';
import { MessagesView } from './views/messages.js';
import { RoomView } from './views/room.js';

const SESSION_KEY = 'switchboard:operator';
const ENDED_KEY = 'switchboard:session-ended';

const CONN_TEXT = {
  connecting: 'connecting…',
  connected: 'connected',
  reconnecting: 'reconnecting…',
  offline: 'reconnecting… (offline)',
  expired: 'signed out: session expired',
  stopped: 'disconnected',
};

function announce(text) {
  const el = $('#announcer');
  el.textContent = '';
  // A fresh text node per announcement so repeated texts are read too.
  setTimeout(() => {
    el.textContent = text;
  }, 30);
}

function savedOperator() {
  try {
    return JSON.parse(sessionStorage.getItem(SESSION_KEY) || 'null');
  } catch {
    return null;
  }
}

/** An admin with the tenant's API key: an operator token minted with it (and renewed with it). */
async function startOperator({ key, identity }) {
  const api = new Api(key);
  const t = await api.mintOperatorToken(identity);
  try {
    sessionStorage.setItem(SESSION_KEY, JSON.stringify({ key, identity }));
    localStorage.setItem('switchboard:identity', identity);
  } catch {
    // storage disabled: a reload asks again
  }
  const store = new Store({ mode: 'operator', identity: t.identity || identity, role: 'key' });
  const getToken = async () => (await api.mintOperatorToken(store.identity)).token;
  const chat = new Chat({ store, api, token: t.token, getToken, announce });
  await chat.start();
  mount(store, chat, () => {
    try {
      sessionStorage.removeItem(SESSION_KEY);
    } catch {
      // nothing saved
    }
  });
}

/** Staff signed in with email and password: the session's token, renewed with its refresh token. */
async function startSession(session) {
  const api = new Api(() => session.current);
  const role = session.admin ? 'admin' : 'agent';
  const store = new Store({ mode: 'operator', identity: session.identity, role, name: session.agent.name });
  // The client asks for a token on connect (fresh enough) and ahead of expiry (renewed).
  const getToken = ({ reason } = {}) => (reason === 'connect' ? session.token() : session.refresh());
  await session.token();
  const chat = new Chat({ store, api, token: session.current, getToken, announce });
  // The session ended elsewhere (signed out, password changed, refresh refused): start over,
  // saying why, from a fresh page (the views are bound once per page).
  session.onEnd = (text) => {
    chat.stop();
    try {
      sessionStorage.setItem(ENDED_KEY, text);
    } catch {
      // the sign-in page then shows no reason
    }
    location.href = '/';
  };
  await chat.start();
  mount(store, chat, () => session.signOut());
}

async function onPassword({ email, password }) {
  await startSession(await Session.signIn(email, password));
}

async function onKey(v) {
  await startOperator(v);
}

function mount(store, chat, signOut) {
  hideLogin();
  $('#app').hidden = false;
  document.body.dataset.mode = store.mode;
  const roleText = { key: 'operator', admin: 'admin', agent: 'agent' }[store.role] || '';
  $('#me').textContent = roleText ? `${store.name || store.identity} (${roleText})` : store.identity;
  const messages = new MessagesView({ store, chat });
  const composer = new Composer({ store, chat, messages });
  const panel = new ContactPanel({ store, chat });
  const room = new RoomView({ store, chat, messages, composer, panel });
  const notifier = new Notifier({ store });
  if (store.mode === 'operator') new FiltersView({ store, chat });
  const open = (id, { focus = true } = {}) => {
    // Shown first, then filled: the history pins to its newest message in a visible scroller.
    document.body.classList.add('room-open');
    $('#back').hidden = false;
    chat.open(id);
    room.show(id);
    history.replaceState(null, '', `${location.pathname}${location.search}#c=${id}`);
    if (focus) $('#composer-text').focus();
  };
  const list = new ListView({ store, chat, onOpen: (id) => open(id) });
  panel.onOpen = (id) => open(id);
  // A desktop notification's click sets `#c=<id>`.
  window.addEventListener('hashchange', () => {
    const m = /^#c=([0-9a-f-]{36})$/.exec(location.hash);
    if (m && store.room(m[1]) && store.activeId !== m[1]) open(m[1], { focus: false });
  });
  const back = () => {
    if (!document.body.classList.contains('room-open')) return;
    document.body.classList.remove('room-open');
    $('#back').hidden = true;
    const b = store.activeId && document.querySelector(`#conv-list button[data-id="${store.activeId}"]`);
    if (b) b.focus();
  };
  $('#back').onclick = back;
  $('.skip').onclick = (ev) => {
    ev.preventDefault();
    const target = store.activeId ? $('#scroller') : $('#conv-list button');
    if (target) target.focus();
  };
  // Escape closes what is open, innermost first: the canned list (the composer's), the settings,
  // the contact panel, the notice, then (phone width) the room, back to the list.
  document.addEventListener('keydown', (ev) => {
    if (ev.key !== 'Escape' || ev.defaultPrevented) return;
    const settings = $('#settings');
    if (settings.open) {
      settings.open = false;
      settings.querySelector('summary').focus();
      ev.preventDefault();
    } else if (panel.isOpen()) {
      panel.close();
      ev.preventDefault();
    } else if (!$('#notice').hidden) {
      store.setNotice(null);
      ev.preventDefault();
    } else if (document.body.classList.contains('room-open') && matchMedia('(max-width: 720px)').matches) {
      back();
      ev.preventDefault();
    }
  });
  $('#signout').textContent = store.mode === 'operator' ? 'Sign out' : 'Leave';
  $('#signout').onclick = () => {
    chat.stop();
    if (store.mode === 'user') {
      leave();
      return;
    }
    Promise.resolve(signOut && signOut()).finally(() => {
      location.href = '/';
    });
  };

  let noticeShown = null;
  let noticeTimer = 0;
  store.onChange((d) => {
    if (d.conn) {
      const c = $('#conn');
      c.dataset.state = store.conn;
      c.textContent = store.mode === 'user' && store.conn === 'expired' ? 'This chat link has expired' : CONN_TEXT[store.conn] || store.conn;
      if (store.notice !== noticeShown) {
        noticeShown = store.notice;
        $('#notice').hidden = !store.notice;
        $('#notice').textContent = store.notice ? store.notice.text : '';
        clearTimeout(noticeTimer);
        if (store.notice) noticeTimer = setTimeout(() => store.setNotice(null), 10000);
      }
    }
    if (d.list) list.render();
    if (store.activeId && d.rooms.has(store.activeId)) room.render();
    notifier.update();
  });
  $('#notice').addEventListener('click', () => store.setNotice(null));

  store.touch({ conn: true, list: true });
  list.render();
  const fromHash = /^#c=([0-9a-f-]{36})$/.exec(location.hash);
  if (fromHash && store.room(fromHash[1])) open(fromHash[1], { focus: false });
  else if (store.mode === 'user' && store.rooms.size === 1) open([...store.rooms.keys()][0], { focus: false });
  else room.show(null);

  // After sign-in the form's focused button is gone: start keyboard navigation from the top, so
  // the first Tab reaches "Skip to messages".
  if (!document.activeElement || document.activeElement === document.body || document.activeElement.closest('#login')) {
    document.body.tabIndex = -1;
    document.body.focus({ preventScroll: true });
    document.body.removeAttribute('tabindex');
  }

  // Handle for debugging from the console (and for the end-to-end test).
  window.switchboard = { store, chat };
}

/** The invite link's token (`/#invite=`), taken out of the address bar at once. */
function inviteToken() {
  const hash = new URLSearchParams(location.hash.slice(1));
  const token = hash.get('invite');
  if (token) history.replaceState(null, '', location.pathname + location.search);
  return token;
}

async function boot() {
  const invite = inviteToken();
  if (invite) {
    showInvite({ onSubmit: async (password) => startSession(await Session.acceptInvite(invite, password)) });
    return;
  }
  const token = userToken();
  if (token) {
    startUser(token, { mount, announce });
    return;
  }
  const session = Session.restore();
  if (session) {
    try {
      await startSession(session);
      return;
    } catch (e) {
      showLogin({ onPassword, onKey, error: e.status === 401 ? 'Your session has ended: sign in again.' : e.message });
      return;
    }
  }
  const saved = savedOperator();
  if (hasLeft() && !saved) {
    leave();
    return;
  }
  if (!saved) {
    let ended = '';
    try {
      ended = sessionStorage.getItem(ENDED_KEY) || '';
      sessionStorage.removeItem(ENDED_KEY);
    } catch {
      // storage disabled
    }
    showLogin({ onPassword, onKey, error: ended });
    return;
  }
  try {
    await startOperator(saved);
  } catch (e) {
    try {
      sessionStorage.removeItem(SESSION_KEY);
    } catch {
      // nothing saved
    }
    showLogin({ onPassword, onKey, keyError: e.status === 401 ? 'Your API key is no longer accepted.' : e.message });
  }
}

boot();
