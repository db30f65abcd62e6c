// What the client does with each server frame before emitting it: the per-room position
// (`subscribed`, `message`), settling sends (`ack`, `error` with a `client_id`), the token swap
// (`refreshed`, or an `error` answering `refresh`), and forgetting rooms the server refused or
// removed. Split from client.js so the rules per frame read as one table; each handler runs
// with `this` bound to the SwitchboardClient and returns what to emit (null: drop the frame).

export class ClientError extends Error {
  /** @param {string} code @param {string} message @param {object} [extra] */
  constructor(code, message, extra = {}) {
    super(message || code);
    this.name = 'ClientError';
    this.code = code;
    Object.assign(this, extra);
  }
}

/** Codes of an `error` frame answering a refused `refresh`. */
const REFRESH_ERRORS = new Set(['invalid_token', 'token_expired', 'forbidden', 'unauthorized']);

/** Bookkeeping per frame type; returns what to emit (nothing: the frame is dropped). */
export const FRAMES = {
  subscribed(f) {
    const r = this.roomsById.get(f.conversation_id);
    if (!r) return { ...f, resumed: false, gap: false };
    const since = r.awaiting ? r.awaiting.since : undefined;
    const resumed = since !== undefined;
    const gap = resumed && !f.recovered;
    if (!f.recovered || r.seq === null) r.seq = f.seq;
    r.epoch = f.epoch;
    r.subscribed = true;
    r.awaiting = false;
    if (f.last_read_seq) {
      r.readSent = Math.max(r.readSent, f.last_read_seq);
      r.readSeq = Math.max(r.readSeq, f.last_read_seq);
    }
    this.flushRead(f.conversation_id, r);
    return resumed ? { ...f, resumed, gap, since } : { ...f, resumed, gap };
  },
  message(f) {
    const m = f.message;
    const r = m && this.roomsById.get(m.conversation_id);
    if (r) {
      if (r.seq !== null && m.seq <= r.seq) return null; // already delivered
      r.seq = m.seq;
    }
    return m;
  },
  message_updated(f) {
    return f.message;
  },
  ack(f) {
    const s = this.sends.get(f.client_id);
    if (s) {
      clearTimeout(s.timer);
      this.sends.delete(f.client_id);
      s.resolve(f);
    }
    return f;
  },
  error(f) {
    const s = f.client_id ? this.sends.get(f.client_id) : null;
    if (s) {
      if (f.code === 'rate_limited') {
        clearTimeout(s.timer);
        s.timer = setTimeout(() => this.transmit(s), this.opts.rateLimitedRetryMs);
        return f;
      }
      clearTimeout(s.timer);
      this.sends.delete(f.client_id);
      s.reject(new ClientError(f.code, f.message, { clientId: f.client_id, conversationId: f.conversation_id }));
      return f;
    }
    if (this.refreshing && !f.conversation_id && REFRESH_ERRORS.has(f.code)) {
      this.refreshing.reject(new ClientError(f.code, f.message));
      this.refreshing = null;
      return f;
    }
    const r = f.conversation_id ? this.roomsById.get(f.conversation_id) : null;
    if (r && r.awaiting && (f.code === 'forbidden' || f.code === 'not_found')) {
      // The subscribe was refused for good: do not retry it on every reconnect.
      this.roomsById.delete(f.conversation_id);
    }
    return f;
  },
  refreshed(f) {
    if (this.refreshing) {
      this.setToken(this.refreshing.token);
      this.refreshing.resolve(f);
      this.refreshing = null;
    }
    return f;
  },
  unsubscribed(f) {
    // Removed by the server (token scope, reassigned, removed): not resumed any more.
    if (f.reason !== 'client') this.roomsById.delete(f.conversation_id);
    return f;
  },
};
