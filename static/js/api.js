// The operator's REST calls with an API key (conversation list, tokens, participants,
// assignment). The HTTP mechanics (errors as ApiError with the server's `code`, concurrency,
// 429 retries) are the JS client's `Rest` (served at /sdk/), as are history pages, which the
// page reads with its client token through the client.

import { ApiError, decodeToken, Rest } from '/sdk/index.js';

export { ApiError, decodeToken };

export class Api extends Rest {
  /** @param {string} key API key sent as `Authorization: Bearer <key>` */
  constructor(key, base = '') {
    super({ url: base, auth: key });
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
