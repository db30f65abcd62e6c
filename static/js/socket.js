// One WebSocket to /v1.0/ws with reconnects.
//
// - Exponential backoff with jitter (0.5 s doubling up to 15 s), reset once a connection has
//   stayed up for a few seconds.
// - While the browser reports being offline no attempt is made (it would only fail); the
//   `online` event reconnects at once, the `offline` event drops the socket at once.
// - A ping every 20 s (the server closes connections silent for `ws.idle_timeout_secs`); no
//   frame for 10 s after it means the connection is dead: drop it and reconnect.
// - Outgoing frames pass a token bucket (15/s, bursts of 30) below the server's per-connection
//   limit, so re-subscribing to many rooms at once is paced instead of refused.
// - Close codes 4001/4002 (bad or expired token) ask the owner for a fresh token once; when it
//   has none, the socket stops in the "expired" state.
//
// The owner re-subscribes (with `since`/`epoch`) from `onOpen`; this module knows no rooms.

const INVALID_TOKEN = 4001;
const TOKEN_EXPIRED = 4002;
const BACKOFF_BASE_MS = 500;
const BACKOFF_MAX_MS = 15000;
const STABLE_AFTER_MS = 3000;
const PING_EVERY_MS = 20000;
const PONG_TIMEOUT_MS = 10000;
const RATE_PER_SEC = 15;
const RATE_BURST = 30;

export class Socket {
  /**
   * @param {object} o
   * @param {(refresh: boolean) => Promise<{url: string, token: string}|null>} o.getUrl URL to
   *   connect to and the token to send in the first (`auth`) frame; `refresh` asks for a new
   *   token (resolve null when none can be had).
   * @param {() => void} o.onOpen
   * @param {(frame: object) => void} o.onFrame
   * @param {(state: string, detail?: string) => void} o.onState connecting | connected |
   *   reconnecting | offline | expired | stopped
   */
  constructor({ getUrl, onOpen, onFrame, onState }) {
    this.getUrl = getUrl;
    this.onOpen = onOpen;
    this.onFrame = onFrame;
    this.onState = onState;
    this.ws = null;
    this.state = 'stopped';
    this.attempt = 0;
    this.everConnected = false;
    this.refreshNext = false;
    this.authRetries = 0;
    this.timers = { retry: 0, stable: 0, ping: 0, pong: 0, pump: 0 };
    this.queue = []; // frames waiting for rate-limit tokens
    this.tokens = RATE_BURST;
    this.refilledAt = 0;
    this.lastRx = 0;
    this.onOnline = () => {
      this.attempt = 0;
      this.connect();
    };
    this.onOffline = () => {
      this.drop();
      this.setState('offline');
    };
  }

  start() {
    if (this.state !== 'stopped') return;
    window.addEventListener('online', this.onOnline);
    window.addEventListener('offline', this.onOffline);
    this.state = 'idle';
    this.connect();
  }

  stop() {
    window.removeEventListener('online', this.onOnline);
    window.removeEventListener('offline', this.onOffline);
    this.drop();
    this.clear('retry');
    this.setState('stopped');
  }

  get isOpen() {
    return !!this.ws && this.ws.readyState === WebSocket.OPEN && this.state === 'connected';
  }

  /**
   * Queues a frame for sending (paced by the rate limit); false when not connected, in which
   * case the caller keeps what it needs for after the reconnect.
   */
  send(frame) {
    if (!this.isOpen) return false;
    this.queue.push(JSON.stringify(frame));
    this.pump();
    return true;
  }

  pump() {
    this.clear('pump');
    const now = performance.now();
    this.tokens = Math.min(RATE_BURST, this.tokens + ((now - this.refilledAt) / 1000) * RATE_PER_SEC);
    this.refilledAt = now;
    while (this.queue.length && this.tokens >= 1 && this.isOpen) {
      this.ws.send(this.queue.shift());
      this.tokens -= 1;
    }
    if (this.queue.length && this.isOpen) this.timers.pump = setTimeout(() => this.pump(), 1000 / RATE_PER_SEC);
  }

  /** Closes the current connection without waiting for the close handshake, then reconnects. */
  reconnectNow() {
    this.drop();
    this.scheduleReconnect();
  }

  setState(state, detail) {
    if (this.state === 'stopped' && state !== 'stopped' && state !== 'idle') return;
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
    this.clear('stable');
    this.clear('ping');
    this.clear('pong');
    this.clear('pump');
    this.queue = [];
    if (ws) {
      ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
      try {
        ws.close(1000, 'client reconnecting');
      } catch {
        // already closed
      }
    }
  }

  async connect() {
    if (this.state === 'stopped' || this.ws) return;
    this.clear('retry');
    if (!navigator.onLine) {
      this.setState('offline');
      return;
    }
    this.setState(this.everConnected ? 'reconnecting' : 'connecting');
    const refresh = this.refreshNext;
    this.refreshNext = false;
    let url;
    try {
      url = await this.getUrl(refresh);
    } catch {
      url = undefined; // network trouble while refreshing: retry later
    }
    if (this.state === 'stopped' || this.ws) return;
    if (url === null) {
      this.setState('expired');
      return;
    }
    if (url === undefined) {
      this.scheduleReconnect();
      return;
    }
    const ws = new WebSocket(url.url);
    this.ws = ws;
    ws.onopen = () => {
      // The token goes in the first frame, never in the URL (which proxies and browsers log).
      ws.send(JSON.stringify({ type: 'auth', token: url.token }));
      this.everConnected = true;
      this.setState('connected');
      this.timers.stable = setTimeout(() => {
        this.attempt = 0;
        this.authRetries = 0;
      }, STABLE_AFTER_MS);
      this.lastRx = performance.now();
      this.tokens = RATE_BURST;
      this.refilledAt = this.lastRx;
      this.timers.ping = setInterval(() => this.ping(), PING_EVERY_MS);
      this.onOpen();
    };
    ws.onmessage = (ev) => {
      this.lastRx = performance.now();
      let frame;
      try {
        frame = JSON.parse(ev.data);
      } catch {
        return;
      }
      if (frame.type !== 'pong') this.onFrame(frame);
    };
    ws.onerror = () => {
      // `close` follows with the details.
    };
    ws.onclose = (ev) => {
      if (ws !== this.ws) return;
      this.ws = null;
      this.clear('stable');
      this.clear('ping');
      this.clear('pong');
      this.clear('pump');
      this.queue = [];
      if (ev.code === INVALID_TOKEN || ev.code === TOKEN_EXPIRED) {
        if (this.authRetries >= 1) {
          this.setState('expired');
          return;
        }
        this.authRetries += 1;
        this.refreshNext = true;
      }
      this.scheduleReconnect();
    };
  }

  scheduleReconnect() {
    if (this.state === 'stopped') return;
    this.clear('retry');
    if (!navigator.onLine) {
      this.setState('offline');
      return;
    }
    this.setState('reconnecting');
    const ceiling = Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** this.attempt);
    const delay = Math.round(ceiling * (0.5 + Math.random() * 0.5));
    this.attempt = Math.min(this.attempt + 1, 10);
    this.timers.retry = setTimeout(() => this.connect(), delay);
  }

  /** Keepalive: a ping, and a dead connection is dropped when nothing answers in time. */
  ping() {
    const sentAt = performance.now();
    if (!this.send({ type: 'ping' })) return;
    this.clear('pong');
    this.timers.pong = setTimeout(() => {
      if (this.lastRx < sentAt) this.reconnectNow();
    }, PONG_TIMEOUT_MS);
  }
}
