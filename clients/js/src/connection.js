// One WebSocket to /v1.0/ws, kept open: authentication, reconnects, liveness, pacing.
//
// Owns the transport only; it knows no rooms and no messages (client.js re-subscribes and
// re-sends from `onOpen`). Why each piece:
// - The token goes in the first frame (`{"type":"auth","token":…}`) or in the subprotocol list
//   (`token.<jwt>` next to `switchboard.v1`), never in the URL: URLs end up in browser history
//   and proxy logs.
// - Reconnects wait an exponential backoff with jitter (backoff.js), reset once a connection
//   has stayed up for `stableAfterMs`, so a server restart is not met by every client at once.
// - Close codes 4001/4002 (bad or expired token) ask `obtainToken` for a fresh token once per
//   stable connection; when there is none (or the fresh one fails too) the state becomes
//   `expired` and reconnecting stops.
// - A ping every `pingEveryMs` keeps idle connections alive (the server closes silent ones);
//   `probe()` — also used when an ack is late — drops a connection on which nothing arrives
//   within `pongTimeoutMs`, since a dead TCP peer is otherwise noticed only much later.
// - Outgoing frames pass a token bucket below the server's per-connection frame limit, so
//   re-subscribing many rooms at once is paced instead of refused.
// - In browsers, the `offline` event drops the socket and `online` reconnects at once.

import { Backoff } from './backoff.js';

export const CLOSE_INVALID_TOKEN = 4001;
export const CLOSE_TOKEN_EXPIRED = 4002;
export const PROTOCOL = 'switchboard.v1';

export const CONNECTION_DEFAULTS = Object.freeze({
  auth: 'frame',
  stableAfterMs: 3000,
  pingEveryMs: 20000,
  pongTimeoutMs: 10000,
  rate: Object.freeze({ perSec: 15, burst: 30 }),
});

const now = () => (globalThis.performance ? performance.now() : Date.now());

export class Connection {
  /**
   * @param {object} o
   * @param {string} o.url ws:// or wss:// URL of /v1.0/ws
   * @param {(reason: 'connect'|'rejected') => Promise<string|null>} o.obtainToken the token for
   *   the next attempt; null: none can be had (the connection stops, `expired`)
   * @param {() => void} o.onOpen
   * @param {(frame: any) => void} o.onFrame every frame but `pong`
   * @param {(state: string, detail?: any) => void} o.onState
   */
  constructor(o) {
    const opts = { ...CONNECTION_DEFAULTS, ...o };
    this.url = opts.url;
    this.WebSocket = opts.WebSocket || globalThis.WebSocket;
    if (typeof this.WebSocket !== 'function') {
      throw new TypeError('no WebSocket implementation: pass one as the `WebSocket` option (e.g. the `ws` package)');
    }
    if (opts.auth !== 'frame' && opts.auth !== 'subprotocol') throw new TypeError("auth must be 'frame' or 'subprotocol'");
    this.opts = opts;
    this.obtainToken = opts.obtainToken;
    this.onOpen = opts.onOpen;
    this.onFrame = opts.onFrame;
    this.onState = opts.onState;
    this.backoff = new Backoff(opts.backoff, opts.random);
    this.ws = null;
    this.state = 'stopped';
    this.everConnected = false;
    this.tokenReason = 'connect';
    this.authRetries = 0;
    this.timers = { retry: 0, stable: 0, ping: 0, pong: 0, pump: 0 };
    this.queue = [];
    this.bucket = 0;
    this.refilledAt = 0;
    this.lastRx = 0;
    this.network = opts.watchNetwork !== false && typeof globalThis.addEventListener === 'function' && !!globalThis.navigator;
    this.onOnline = () => {
      this.backoff.reset();
      this.connect();
    };
    this.onOffline = () => {
      this.drop();
      this.setState('offline');
    };
  }

  /** Starts, or starts again after `stop()` or the `expired` state (asking for a new token). */
  start() {
    if (this.state === 'expired') {
      this.authRetries = 0;
      this.tokenReason = 'rejected';
      this.state = 'idle';
      this.connect();
      return;
    }
    if (this.state !== 'stopped') return;
    if (this.network) {
      globalThis.addEventListener('online', this.onOnline);
      globalThis.addEventListener('offline', this.onOffline);
    }
    this.state = 'idle';
    this.connect();
  }

  stop() {
    if (this.network) {
      globalThis.removeEventListener('online', this.onOnline);
      globalThis.removeEventListener('offline', this.onOffline);
    }
    this.drop();
    this.clear('retry');
    this.setState('stopped');
  }

  get isOpen() {
    return !!this.ws && this.ws.readyState === 1 && this.state === 'connected';
  }

  /** Queues a frame (paced by the rate limit); false when not connected. */
  send(frame) {
    if (!this.isOpen) return false;
    this.queue.push(JSON.stringify(frame));
    this.pump();
    return true;
  }

  pump() {
    this.clear('pump');
    const rate = this.opts.rate;
    if (!rate) {
      while (this.queue.length && this.isOpen) this.ws.send(this.queue.shift());
      return;
    }
    const t = now();
    this.bucket = Math.min(rate.burst, this.bucket + ((t - this.refilledAt) / 1000) * rate.perSec);
    this.refilledAt = t;
    while (this.queue.length && this.bucket >= 1 && this.isOpen) {
      this.ws.send(this.queue.shift());
      this.bucket -= 1;
    }
    if (this.queue.length && this.isOpen) this.timers.pump = setTimeout(() => this.pump(), 1000 / rate.perSec);
  }

  /** Closes the current connection at once (no close handshake wait) and reconnects. */
  reconnectNow() {
    this.drop();
    this.scheduleReconnect();
  }

  /** Pings now; a connection on which nothing arrives within `pongTimeoutMs` is dropped. */
  probe() {
    if (this.timers.pong) return; // a probe is already running
    const sentAt = now();
    if (!this.send({ type: 'ping' })) return;
    this.timers.pong = setTimeout(() => {
      this.timers.pong = 0;
      if (this.lastRx < sentAt) this.reconnectNow();
    }, this.opts.pongTimeoutMs);
  }

  setState(state, detail) {
    if (this.state === 'stopped' && state !== 'stopped' && state !== 'idle') return;
    if (this.state === state && detail === undefined) return;
    this.state = state;
    this.onState(state, detail);
  }

  clear(name) {
    clearTimeout(this.timers[name]);
    clearInterval(this.timers[name]);
    this.timers[name] = 0;
  }

  /** Detaches and closes the current socket, if any. */
  drop() {
    const ws = this.ws;
    this.ws = null;
    for (const t of ['stable', 'ping', 'pong', 'pump']) this.clear(t);
    this.queue = [];
    if (ws) {
      ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
      // The `ws` package emits `error` as an event too; an attached no-op keeps it handled.
      if (typeof ws.on === 'function') ws.on('error', () => {});
      try {
        if (ws.readyState === 1) ws.close(1000, 'client reconnecting');
        else if (typeof ws.terminate === 'function') ws.terminate();
        else ws.close();
      } catch {
        // already closed
      }
    }
  }

  offline() {
    return this.network && globalThis.navigator.onLine === false;
  }

  async connect() {
    if (this.state === 'stopped' || this.ws || this.connecting) return;
    this.clear('retry');
    if (this.offline()) {
      this.setState('offline');
      return;
    }
    this.setState(this.everConnected ? 'reconnecting' : 'connecting');
    const reason = this.tokenReason;
    this.tokenReason = 'connect';
    let token;
    this.connecting = true;
    try {
      token = await this.obtainToken(reason);
    } catch {
      token = undefined; // network trouble while fetching a token: retry later
    } finally {
      this.connecting = false;
    }
    if (this.state === 'stopped' || this.ws) return;
    if (token === null) {
      this.setState('expired');
      return;
    }
    if (token === undefined) {
      this.tokenReason = reason;
      this.scheduleReconnect();
      return;
    }
    this.open(token);
  }

  open(token) {
    const sub = this.opts.auth === 'subprotocol';
    let ws;
    try {
      ws = sub ? new this.WebSocket(this.url, [PROTOCOL, `token.${token}`]) : new this.WebSocket(this.url);
    } catch (e) {
      this.setState('reconnecting', e);
      this.scheduleReconnect();
      return;
    }
    this.ws = ws;
    ws.onopen = () => {
      if (!sub) ws.send(JSON.stringify({ type: 'auth', token }));
      this.everConnected = true;
      this.lastRx = now();
      this.bucket = this.opts.rate ? this.opts.rate.burst : 0;
      this.refilledAt = this.lastRx;
      this.setState('connected');
      this.timers.stable = setTimeout(() => {
        this.backoff.reset();
        this.authRetries = 0;
      }, this.opts.stableAfterMs);
      this.timers.ping = setInterval(() => this.probe(), this.opts.pingEveryMs);
      this.onOpen();
    };
    ws.onmessage = (ev) => {
      this.lastRx = now();
      let frame;
      try {
        frame = JSON.parse(typeof ev.data === 'string' ? ev.data : String(ev.data));
      } catch {
        return;
      }
      if (frame && frame.type !== 'pong') this.onFrame(frame);
    };
    ws.onerror = () => {
      // `close` follows with the details.
    };
    ws.onclose = (ev) => {
      if (ws !== this.ws) return;
      this.ws = null;
      for (const t of ['stable', 'ping', 'pong', 'pump']) this.clear(t);
      this.queue = [];
      if (ev.code === CLOSE_INVALID_TOKEN || ev.code === CLOSE_TOKEN_EXPIRED) {
        if (this.authRetries >= 1) {
          this.setState('expired', { code: ev.code });
          return;
        }
        this.authRetries += 1;
        this.tokenReason = 'rejected';
      }
      this.setState('reconnecting', { code: ev.code, reason: ev.reason });
      this.scheduleReconnect();
    };
  }

  scheduleReconnect() {
    if (this.state === 'stopped' || this.state === 'expired') return;
    this.clear('retry');
    if (this.offline()) {
      this.setState('offline');
      return;
    }
    this.setState('reconnecting');
    this.timers.retry = setTimeout(() => this.connect(), this.backoff.next());
  }
}
