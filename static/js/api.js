// REST client for /v1.0 (API-key mode) and client-token helpers.
//
// Every failure is thrown as an ApiError carrying the server's stable error `code`, so views can
// show the server's own message instead of logging to the console.

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
  }
}

const MAX_IN_FLIGHT = 6;
const MAX_RETRIES_429 = 2;

export class Api {
  /** @param {string} key API key sent as `Authorization: Bearer <key>` */
  constructor(key, base = '') {
    this.key = key;
    this.base = base;
    this.inFlight = 0;
    this.waiting = [];
  }

  /**
   * At most MAX_IN_FLIGHT requests at a time (the server rate-limits per API key); a 429 is
   * retried after its Retry-After.
   */
  async call(method, path, body) {
    if (this.inFlight >= MAX_IN_FLIGHT) await new Promise((resolve) => this.waiting.push(resolve));
    this.inFlight += 1;
    try {
      for (let attempt = 0; ; attempt++) {
        try {
          return await this.once(method, path, body);
        } catch (e) {
          if (e.status !== 429 || attempt >= MAX_RETRIES_429) throw e;
          await new Promise((resolve) => setTimeout(resolve, (e.retryAfter || 1) * 1000));
        }
      }
    } finally {
      this.inFlight -= 1;
      const next = this.waiting.shift();
      if (next) next();
    }
  }

  async once(method, path, body) {
    const headers = { Authorization: `Bearer ${this.key}` };
    const init = { method, headers };
    if (body !== undefined) {
      headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    let res;
    try {
      res = await fetch(`${this.base}/v1.0${path}`, init);
    } catch (e) {
      throw new ApiError(0, 'network', 'Cannot reach the server');
    }
    const text = await res.text();
    let data = null;
    try {
      data = text ? JSON.parse(text) : null;
    } catch {
      data = null;
    }
    if (!res.ok) {
      const err = data && data.error ? data.error : {};
      const e = new ApiError(res.status, err.code || `http_${res.status}`, err.message || res.statusText);
      e.retryAfter = Number(res.headers.get('Retry-After')) || 0;
      throw e;
    }
    return data;
  }

  /** Operator token: may join any conversation of the tenant. */
  mintOperatorToken(identity) {
    return this.call('POST', '/tokens', { identity, all_conversations: true });
  }

  /** End-user token for one webchat identity, scoped to `conversationIds`. */
  mintClientToken(identity, conversationIds) {
    return this.call('POST', '/tokens', { identity, conversation_ids: conversationIds });
  }

  listConversations({ pageSize = 30, pageToken } = {}) {
    const q = new URLSearchParams({ page_size: String(pageSize) });
    if (pageToken) q.set('page_token', pageToken);
    return this.call('GET', `/conversations?${q}`);
  }

  createConversation(name) {
    return this.call('POST', '/conversations', { name });
  }

  /** Newest page when `before` is absent; `{result (ascending), has_more}`. */
  history(conversationId, { before, pageSize = 30 } = {}) {
    const q = new URLSearchParams({ page_size: String(pageSize) });
    if (before !== undefined && before !== null) q.set('before', String(before));
    return this.call('GET', `/conversations/${conversationId}/messages?${q}`);
  }

  participants(conversationId) {
    return this.call('GET', `/conversations/${conversationId}/participants`);
  }

  /** `accountId`: the channel account a non-webchat address is reached through. */
  addParticipant(conversationId, address, accountId) {
    const body = { address };
    if (accountId) body.account_id = accountId;
    return this.call('POST', `/conversations/${conversationId}/participants`, body);
  }

  /** Gives the conversation to agent `ownerId`; returns the updated conversation. */
  assign(conversationId, ownerId) {
    return this.call('PUT', `/conversations/${conversationId}`, { owner_type: 'agent', owner_id: ownerId });
  }

  /** Sets the conversation's status (`open`, `resolved`…); returns the updated conversation. */
  setStatus(conversationId, status) {
    return this.call('PUT', `/conversations/${conversationId}`, { status });
  }

  unassign(conversationId) {
    return this.call('POST', `/conversations/${conversationId}/unassign`, {});
  }

  /** Channel accounts (our SMS numbers, LINE channels, bots…): `{result: [{id, type, name, address}]}`. */
  listAccounts() {
    return this.call('GET', '/conversation_accounts');
  }
}

/**
 * Reads a client token's claims without verifying it (the server verifies; the page only needs
 * the identity, the conversation list and the expiry).
 * @returns {{sub: string, tid: string, convs?: string[], exp: number} | null}
 */
export function decodeToken(token) {
  const parts = String(token || '').split('.');
  if (parts.length !== 3) return null;
  try {
    const b64 = parts[1].replace(/-/g, '+').replace(/_/g, '/');
    const padded = b64 + '='.repeat((4 - (b64.length % 4)) % 4);
    const bytes = Uint8Array.from(atob(padded), (c) => c.charCodeAt(0));
    const claims = JSON.parse(new TextDecoder().decode(bytes));
    if (typeof claims.sub !== 'string' || typeof claims.exp !== 'number') return null;
    return claims;
  } catch {
    return null;
  }
}

/**
 * The WebSocket URL on the page's own origin. It carries no token (URLs end up in logs): the
 * socket sends it in its first frame, `{"type":"auth","token":…}`.
 */
export function socketUrl() {
  const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${proto}//${location.host}/v1.0/ws`;
}
