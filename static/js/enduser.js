// End-user mode: a client token from the link's fragment (`#token=`, or the `?token=` of older
// links), the room's name riding along (`&name=`), the tab's memory of both, and "Leave". The
// staff's sign-in is main.js's and session.js's.

import { decodeToken } from './api.js';
import { Chat } from './chat.js';
import { Store } from './store.js';
import { $ } from './views/dom.js';
import { hideLogin } from './views/login.js';

const USER_KEY = 'switchboard:user-token';
const USER_NAME_KEY = 'switchboard:user-room-name';
const LEFT_KEY = 'switchboard:user-left'; // this tab's end user left: a reload says goodbye again

/**
 * The end user's client token: from the link's fragment (`#token=`), else its query (`?token=`,
 * links made before the fragment), else the one this tab was opened with (kept in
 * sessionStorage, so a reload stays signed in). A token found in the URL is removed from the
 * address bar at once (history.replaceState), so it is not bookmarked, copied or sent along as
 * `Referer`.
 */
let userRoomName = '';

function savedRoomName() {
  try {
    return userRoomName || sessionStorage.getItem(USER_NAME_KEY) || '';
  } catch {
    return userRoomName;
  }
}

export function userToken() {
  const hash = new URLSearchParams(location.hash.slice(1));
  const query = new URLSearchParams(location.search);
  const token = hash.get('token') || query.get('token');
  // The conversation's name rides along in the invite link (`&name=`): an end user's token reads
  // messages only, so the page could not look it up.
  const name = hash.get('name') || query.get('name');
  if (name) {
    try {
      sessionStorage.setItem(USER_NAME_KEY, name);
    } catch {
      // storage disabled: shown for this page load only
    }
    userRoomName = name;
  }
  if (!token) {
    try {
      return sessionStorage.getItem(USER_KEY);
    } catch {
      return null;
    }
  }
  try {
    sessionStorage.setItem(USER_KEY, token);
    sessionStorage.removeItem(LEFT_KEY);
  } catch {
    // storage disabled: a reload needs the link again
  }
  hash.delete('token');
  query.delete('token');
  hash.delete('name');
  query.delete('name');
  const q = query.toString();
  const f = hash.toString();
  history.replaceState(null, '', `${location.pathname}${q ? `?${q}` : ''}${f ? `#${f}` : ''}`);
  return token;
}


/** This tab's end user left (a reload says goodbye again). */
export function hasLeft() {
  try {
    return sessionStorage.getItem(LEFT_KEY) === '1';
  } catch {
    return false;
  }
}

export function startUser(token, { mount, announce }) {
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
  if (!Array.isArray(claims.convs)) return fail('This is a staff token, not a chat link: sign in with your email and password instead.');
  if (claims.exp * 1000 <= Date.now()) return fail('This chat link has expired. Ask for a new one.');
  const store = new Store({ mode: 'user', identity: claims.sub });
  const chat = new Chat({ store, api: null, token, conversationIds: claims.convs, announce });
  const name = savedRoomName();
  if (name && claims.convs.length === 1) store.room(claims.convs[0]).name = name;
  // The server lets an end user read its conversation's name (links made without `&name=`).
  for (const id of claims.convs.slice(0, 5)) {
    chat.client
      .request('GET', `/conversations/${id}`)
      .then((c) => {
        const r = store.room(id);
        if (r && c && c.name && !r.name) {
          r.name = c.name;
          store.touch({ room: id });
        }
      })
      .catch(() => {});
  }
  chat.start();
  mount(store, chat);
  return undefined;
}

/**
 * An end user leaving: the tab forgets the link's token and shows a goodbye, not the
 * operator's API-key sign-in (the link they were given brings them back).
 */
export function leave() {
  try {
    sessionStorage.removeItem(USER_KEY);
    sessionStorage.removeItem(USER_NAME_KEY);
    sessionStorage.setItem(LEFT_KEY, '1');
  } catch {
    // nothing saved
  }
  $('#app').hidden = true;
  hideLogin();
  $('#left').hidden = false;
  $('#left h1').focus();
}

