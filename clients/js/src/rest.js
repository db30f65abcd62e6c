// REST calls to /v1.0 with a bearer credential (a client token, or an API key for server-side
// and operator tools), and the calls a chat client needs: history pages and uploads.
//
// Every failure is thrown as an ApiError carrying the server's stable error `code` (network
// trouble: status 0, code `network`). At most `maxInFlight` requests run at a time (the server
// rate-limits per credential), and a 429 is retried after its Retry-After, a few times.
// The credential is read through `getAuth()` on every call, so a refreshed token is used at
// once.

export class ApiError extends Error {
  /** @param {number} status @param {string} code @param {string} message */
  constructor(status, code, message) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.retryAfter = 0;
  }
}

const MAX_IN_FLIGHT = 6;
const MAX_RETRIES_429 = 2;

export class Rest {
  /**
   * @param {object} o
   * @param {string} [o.url] the server's base URL (`https://hub.example.com`); '' = this origin
   * @param {string | (() => string | null)} o.auth bearer credential, or a function giving it
   * @param {typeof fetch} [o.fetch]
   * @param {number} [o.maxInFlight]
   */
  constructor({ url = '', auth, fetch: fetchImpl, maxInFlight = MAX_IN_FLIGHT }) {
    this.base = String(url).replace(/\/+$/, '');
    this.getAuth = typeof auth === 'function' ? auth : () => auth;
    this.fetch = fetchImpl || globalThis.fetch.bind(globalThis);
    this.maxInFlight = maxInFlight;
    this.inFlight = 0;
    this.waiting = [];
  }

  /**
   * `method` `/v1.0{path}` with a JSON body (or a FormData, sent as multipart); the parsed
   * answer (null for an empty one).
   */
  async call(method, path, body) {
    if (this.inFlight >= this.maxInFlight) await new Promise((resolve) => this.waiting.push(resolve));
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
    const headers = {};
    const auth = this.getAuth();
    if (auth) headers.Authorization = `Bearer ${auth}`;
    const init = { method, headers };
    if (typeof FormData !== 'undefined' && body instanceof FormData) {
      init.body = body; // fetch sets the multipart Content-Type with its boundary
    } else if (body !== undefined) {
      headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    let res;
    try {
      res = await this.fetch(`${this.base}/v1.0${path}`, init);
    } catch {
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

  /**
   * One page of a conversation's messages, ascending by seq: the newest page without
   * `before`/`after`; `before: seq` pages back, `after: seq` forward. `{result, has_more}`.
   */
  history(conversationId, { before, after, pageSize } = {}) {
    const q = new URLSearchParams();
    if (pageSize !== undefined) q.set('page_size', String(pageSize));
    if (before !== undefined && before !== null) q.set('before', String(before));
    if (after !== undefined && after !== null) q.set('after', String(after));
    const qs = q.toString();
    return this.call('GET', `/conversations/${encodeURIComponent(conversationId)}/messages${qs ? `?${qs}` : ''}`);
  }

  /**
   * Every page going back in time from the newest (or from `before`), newest page first; each
   * page is ascending. Stops after the oldest page.
   */
  async *pages(conversationId, { before, pageSize } = {}) {
    let cursor = before;
    for (;;) {
      const page = await this.history(conversationId, { before: cursor, pageSize });
      yield page;
      if (!page.has_more || !page.result.length) return;
      cursor = page.result[0].seq;
    }
  }

  /**
   * Uploads a file (`POST /v1.0/media`, multipart field `file`) and answers the stored media
   * `{id, url, content_type, size, ...}`; a message then references it as `{media_id: id}`.
   * A client token must name the conversation the file is for (`conversationId`).
   * @param {Blob} file a File or Blob (in Node 20: `new Blob([bytes], {type})`)
   * @param {{conversationId?: string, filename?: string}} [o]
   */
  upload(file, { conversationId, filename } = {}) {
    const form = new FormData();
    if (conversationId) form.append('conversation_id', conversationId);
    const name = filename || (file && file.name) || 'upload';
    form.append('file', file, name);
    return this.call('POST', '/media', form);
  }
}
