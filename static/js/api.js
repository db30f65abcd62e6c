// The staff's REST calls (conversation list, tokens, participants, assignment, agents, canned
// responses, contacts), with an API key or with a signed-in agent's token. The HTTP mechanics (errors as ApiError with the server's `code`, concurrency,
// 429 retries) are the JS client's `Rest` (served at /sdk/), as are history pages, which the
// page reads with its client token through the client.

import { ApiError, decodeToken, Rest } from '/sdk/index.js';

export { ApiError, decodeToken };

export class Api extends Rest {
  /**
   * @param {string | (() => string)} auth API key, or a function giving the session's current
   *   token (sent as `Authorization: Bearer …`)
   */
  constructor(auth, base = '') {
    super({ url: base, auth });
  }

  /** Operator token: may join any conversation of the tenant. */
  mintOperatorToken(identity) {
    return this.call('POST', '/tokens', { identity, all_conversations: true });
  }

  /** End-user token for one webchat identity, scoped to `conversationIds`. */
  mintClientToken(identity, conversationIds) {
    return this.call('POST', '/tokens', { identity, conversation_ids: conversationIds });
  }

  /** Newest first; `filter`: `{ownerId ('none': unassigned), status, q}` (server-side filters). */
  listConversations({ pageSize = 30, pageToken, filter = {} } = {}) {
    const q = new URLSearchParams({ page_size: String(pageSize) });
    if (pageToken) q.set('page_token', pageToken);
    if (filter.ownerId) q.set('owner_id', filter.ownerId);
    if (filter.status) q.set('status', filter.status);
    if (filter.q) q.set('q', filter.q);
    return this.call('GET', `/conversations?${q}`);
  }

  /**
   * The tabs' counts `{mine, unassigned, all, capped}` under `filter` (`{ownerId, status, q}`;
   * `ownerId` is whose conversations Mine counts).
   */
  conversationCounts(filter = {}) {
    const q = new URLSearchParams();
    if (filter.ownerId) q.set('owner_id', filter.ownerId);
    if (filter.status) q.set('status', filter.status);
    if (filter.q) q.set('q', filter.q);
    return this.call('GET', `/conversations/counts?${q}`);
  }

  createConversation(name) {
    return this.call('POST', '/conversations', { name });
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
  setStatus(conversationId, status, snoozedUntil) {
    const body = { status };
    if (snoozedUntil) body.snoozed_until = snoozedUntil;
    return this.call('PUT', `/conversations/${conversationId}`, body);
  }

  /** The tenant's agents, each with `online` (`GET /v1.0/agents`). */
  agents() {
    return this.call('GET', '/agents?page_size=100');
  }

  /** Canned responses whose short code starts with `prefix`. */
  canned(prefix = '') {
    return this.call('GET', `/canned_responses${prefix ? `?${new URLSearchParams({ q: prefix })}` : ''}`);
  }

  contact(id) {
    return this.call('GET', `/contacts/${id}`);
  }

  contactConversations(id) {
    return this.call('GET', `/contacts/${id}/conversations`);
  }

  findContacts(q) {
    return this.call('GET', `/contacts?${new URLSearchParams({ q, page_size: '10' })}`);
  }

  /** Merges contact `otherId` into `id`: `{contact, merged_id}`. */
  mergeContact(id, otherId) {
    return this.call('POST', `/contacts/${id}/merge`, { contact_id: otherId });
  }

  /** Takes the owner away (agent tokens too: `PUT` with a null owner). */
  unassign(conversationId) {
    return this.call('PUT', `/conversations/${conversationId}`, { owner_type: null, owner_id: null });
  }

  /** Channel accounts (our SMS numbers, LINE channels, bots…): `{result: [{id, type, name, address}]}`. */
  listAccounts() {
    return this.call('GET', '/conversation_accounts');
  }
}
