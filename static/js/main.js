// Entry point: picks the mode (operator with an API key, or end user with `#token=` — or the
// `?token=` of older links), builds the store, controller and views, and routes store changes to
// the views.

import { Api, decodeToken } from './api.js';
import { Chat } from './chat.js';
import { Store } from './store.js';
import { $ } from './views/dom.js';
import { ListView } from './views/list.js';
import { hideLogin, showLogin } from './views/login.js';
import { MessagesView } from './views/messages.js';
import { RoomView } from './views/room.js';

const SESSION_KEY = 'switchboard:operator';
const USER_KEY = 'switchboard:user-token';

/**
 * The end user's client token: from the link's fragment (`#token=`), else its query (`?token=`,
 * links made before the fragment), else the one this tab was opened with (kept in
 * sessionStorage, so a reload stays signed in). A token found in the URL is removed from the
 * address bar at once (history.replaceState), so it is not bookmarked, copied or sent along as
 * `Referer`.
 */
function userToken() {
  const hash = new URLSearchParams(location.hash.slice(1));
  const query = new URLSearchParams(location.search);
  const token = hash.get('token') || query.get('token');
  if (!token) {
    try {
      return sessionStorage.getItem(USER_KEY);
    } catch {
      return null;
    }
  }
  try {
    sessionStorage.setItem(USER_KEY, token);
  } catch {
    // storage disabled: a reload needs the link again
  }
  hash.delete('token');
  query.delete('token');
  const q = query.toString();
  const f = hash.toString();
  history.replaceState(null, '', `${location.pathname}${q ? `?${q}` : ''}${f ? `#${f}` : ''}`);
  return token;
}

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

async function startOperator({ key, identity }) {
  const api = new Api(key);
  const t = await api.mintOperatorToken(identity);
  try {
    sessionStorage.setItem(SESSION_KEY, JSON.stringify({ key, identity }));
    localStorage.setItem('switchboard:identity', identity);
  } catch {
    // storage disabled: a reload asks again
  }
  const store = new Store({ mode: 'operator', identity: t.identity || identity });
  const chat = new Chat({ store, api, token: t.token, announce });
  await chat.start();
  mount(store, chat);
}

function startUser(token) {
  const claims = decodeToken(token);
  const fail = (text) => {
    hideLogin();
    $('#app').hidden = false;
    $('#sidebar').hidden = true;
    $('#conn').textContent = 'not connected';
    $('#signout').hidden = true;
    $('#notice').textContent = text;
    $('#notice').hidden = false;
  };
  if (!claims) return fail('This chat link is not valid.');
  if (!Array.isArray(claims.convs)) return fail('This is an operator token: sign in with an API key instead.');
  if (claims.exp * 1000 <= Date.now()) return fail('This chat link has expired. Ask for a new one.');
  const store = new Store({ mode: 'user', identity: claims.sub });
  const chat = new Chat({ store, api: null, token, conversationIds: claims.convs, announce });
  chat.start();
  mount(store, chat);
  return undefined;
}

function mount(store, chat) {
  hideLogin();
  $('#app').hidden = false;
  document.body.dataset.mode = store.mode;
  $('#me').textContent = store.mode === 'operator' ? `${store.identity} (operator)` : store.identity;
  const messages = new MessagesView({ store, chat });
  const room = new RoomView({ store, chat, messages });
  const open = (id, { focus = true } = {}) => {
    chat.open(id);
    room.show(id);
    document.body.classList.add('room-open');
    $('#back').hidden = false;
    history.replaceState(null, '', `${location.pathname}${location.search}#c=${id}`);
    if (focus) $('#composer-text').focus();
  };
  const list = new ListView({ store, chat, onOpen: (id) => open(id) });
  const back = () => {
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
  document.addEventListener('keydown', (ev) => {
    if (ev.key === 'Escape' && document.body.classList.contains('room-open') && matchMedia('(max-width: 720px)').matches) back();
  });
  $('#signout').textContent = store.mode === 'operator' ? 'Sign out' : 'Leave';
  $('#signout').onclick = () => {
    chat.stop();
    try {
      sessionStorage.removeItem(SESSION_KEY);
    } catch {
      // nothing saved
    }
    location.href = '/';
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
  });
  $('#notice').addEventListener('click', () => store.setNotice(null));

  store.touch({ conn: true, list: true });
  list.render();
  const fromHash = /^#c=([0-9a-f-]{36})$/.exec(location.hash);
  if (fromHash && store.room(fromHash[1])) open(fromHash[1], { focus: false });
  else if (store.mode === 'user' && store.rooms.size === 1) open([...store.rooms.keys()][0], { focus: false });
  else room.show(null);

  // Handle for debugging from the console (and for the end-to-end test).
  window.switchboard = { store, chat };
}

async function boot() {
  const token = userToken();
  if (token) {
    startUser(token);
    return;
  }
  const saved = savedOperator();
  const login = (error) => showLogin({ onSubmit: startOperator, error });
  if (!saved) {
    login();
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
    login(e.status === 401 ? 'Your API key is no longer accepted.' : e.message);
  }
}

boot();
