// An agent's own sign-in: email and password (`POST /v1.0/sessions`), an invite link that sets
// the password (`/#invite=<token>`, `POST /v1.0/invites/accept`), the token's renewal with the
// refresh token ahead of expiry (`POST /v1.0/sessions/refresh`, which rotates it) and signing
// out (`DELETE /v1.0/sessions`). It does not decide what the page shows (main.js) nor speak the
// WebSocket (the JS client, which asks `token()` for a fresh token when it needs one).
//
// The pair is kept in localStorage, so every tab of this browser shares one sign-in. A refresh
// token dies when it is used (rotation; reusing a dead one revokes the session), so two tabs
// must never refresh at once: the renewal runs under a Web Lock and re-reads the stored pair
// first — a tab that waited finds the pair the other tab just got and uses it.

import { ApiError, Rest } from '/sdk/index.js';

const KEY = 'switchboard:session';
/** Renew this long before the token expires. */
const EARLY_MS = 60_000;

const rest = new Rest({ url: '', auth: null });

function load() {
  try {
    const s = JSON.parse(localStorage.getItem(KEY) || 'null');
    return s && s.token && s.refresh_token ? s : null;
  } catch {
    return null;
  }
}

function save(s) {
  try {
    if (s) localStorage.setItem(KEY, JSON.stringify(s));
    else localStorage.removeItem(KEY);
  } catch {
    // storage disabled: the sign-in lasts as long as this page
  }
}

const ms = (iso) => (iso ? Date.parse(iso) : 0);

/** Runs `fn` while holding the page-wide refresh lock (where Web Locks exist). */
function locked(fn) {
  return navigator.locks ? navigator.locks.request('switchboard:session-refresh', fn) : fn();
}

export class Session {
  /** @param {object} s the server's answer: `{token, expires_at, refresh_token, refresh_expires_at, agent}` */
  constructor(s) {
    this.s = s;
    this.onEnd = () => {};
  }

  /** The stored sign-in of this browser, unless its refresh token has expired. */
  static restore() {
    const s = load();
    if (!s || ms(s.refresh_expires_at) <= Date.now()) return null;
    return new Session(s);
  }

  /** `POST /v1.0/sessions`; 401 `invalid_credentials`, 429 `rate_limited` are thrown as ApiError. */
  static async signIn(email, password) {
    const s = await rest.call('POST', '/sessions', { email, password });
    save(s);
    return new Session(s);
  }

  /** Sets the password of an invited agent and signs in. */
  static async acceptInvite(token, password) {
    const s = await rest.call('POST', '/invites/accept', { token, password });
    save(s);
    return new Session(s);
  }

  get agent() {
    return this.s.agent || {};
  }

  /** The identity the agent writes under (a conversation's `owner_id`). */
  get identity() {
    return this.agent.identity || '';
  }

  get admin() {
    return this.agent.role === 'admin';
  }

  /** The current token (for REST calls). */
  get current() {
    return this.s.token;
  }

  /** A token valid for at least a minute: the current one, or a renewed one. */
  async token() {
    if (ms(this.s.expires_at) - Date.now() > EARLY_MS) return this.s.token;
    return this.refresh();
  }

  /** Swaps the refresh token for a new pair (or adopts the pair another tab just got). */
  refresh() {
    const mine = this.s;
    return locked(async () => {
      const stored = load();
      if (stored && stored.refresh_token !== mine.refresh_token && ms(stored.expires_at) - Date.now() > EARLY_MS) {
        this.s = stored;
        return stored.token;
      }
      try {
        const s = await rest.call('POST', '/sessions/refresh', { refresh_token: (stored || mine).refresh_token });
        this.s = { ...s, agent: s.agent || mine.agent };
        save(this.s);
        return this.s.token;
      } catch (e) {
        if (e instanceof ApiError && (e.status === 401 || e.status === 404 || e.status === 410)) {
          save(null);
          this.onEnd('Your session has ended: sign in again.');
        }
        throw e;
      }
    });
  }

  /** Signs out on the server (the refresh token dies) and forgets the pair here. */
  async signOut() {
    const refresh = this.s.refresh_token;
    save(null);
    try {
      await rest.call('DELETE', '/sessions', { refresh_token: refresh });
    } catch {
      // already signed out, or offline: the refresh token expires on its own
    }
  }
}
