// Type declarations for @switchboard/client (written by hand; the package has no build step).

export type ConnectionState = 'idle' | 'connecting' | 'connected' | 'reconnecting' | 'offline' | 'expired' | 'stopped';

export interface BackoffOptions {
  /** First retry's ceiling, ms (500). */
  baseMs?: number;
  /** Largest wait, ms (15000). */
  maxMs?: number;
  /** Growth per attempt (2). */
  factor?: number;
  /** Share of the ceiling taken off at random, 0..1 (0.5: waits are in [ceiling/2, ceiling]). */
  jitter?: number;
}

export interface TokenRequest {
  /** `connect`: no token yet; `rejected`: the server closed with 4001/4002; `expiring`: refresh ahead of expiry (or the token at hand has expired). */
  reason: 'connect' | 'rejected' | 'expiring';
}

export interface ClientOptions {
  /** The server's base URL, e.g. `https://hub.example.com` (default in a browser: the page's origin). */
  url?: string;
  /** The WebSocket URL, when not `<url>/v1.0/ws` (ws/wss derived from `url`). */
  wsUrl?: string;
  /** A client token (`POST /v1.0/tokens`). */
  token?: string;
  /** Gives a (fresh) token; null when none can be had (the client stops in state `expired`). */
  getToken?: (request: TokenRequest) => string | null | Promise<string | null>;
  /** How the token is presented: first frame (default) or `Sec-WebSocket-Protocol` entry. Never the URL. */
  auth?: 'frame' | 'subprotocol';
  /** A WebSocket class (Node 20 has none built in: pass the `ws` package's). */
  WebSocket?: any;
  /** A fetch implementation (default: the global one). */
  fetch?: typeof fetch;
  backoff?: BackoffOptions;
  /** Random numbers for the jitter (tests). */
  random?: () => number;
  /** A connection up this long resets the backoff (3000). */
  stableAfterMs?: number;
  /** Keepalive ping period (20000). */
  pingEveryMs?: number;
  /** A probe with no frame back in this time drops the connection (10000). */
  pongTimeoutMs?: number;
  /** A send without ack in this time is written again, with a liveness probe (10000). */
  ackTimeoutMs?: number;
  /** Least time between two typing frames per room (2500). */
  typingEveryMs?: number;
  /** Refresh this long before the token expires, at most half of its remaining life (60000). */
  refreshBeforeMs?: number;
  /** Outgoing frame pacing, below the server's limit; null disables ({perSec: 15, burst: 30}). */
  rate?: { perSec: number; burst: number } | null;
  /** Browsers: follow `online`/`offline` events (true). */
  watchNetwork?: boolean;
}

export type MediaRef = { media_id: string } | { url: string; content_type?: string; [k: string]: unknown };

export interface Message {
  id: string;
  conversation_id: string;
  seq: number;
  author: string | null;
  direction: 'inbound' | 'outbound';
  text: string;
  medias: Array<{ [k: string]: unknown }>;
  status: string;
  client_id?: string | null;
  tm_create: string;
  visibility?: 'public' | 'internal';
  edited_at?: string | null;
  deleted_at?: string | null;
  [k: string]: unknown;
}

export interface Subscribed {
  type: 'subscribed';
  conversation_id: string;
  seq: number;
  epoch: string;
  recovered: boolean;
  online: string[];
  participant_id?: string;
  last_read_seq?: number;
  /** A `since` was sent (a resume or a seeded position). */
  resumed: boolean;
  /** The `since` sent, when `resumed`. */
  since?: number;
  /** The resume could not be replayed: reload the room's history over REST. */
  gap: boolean;
}

export interface Ack {
  type: 'ack';
  conversation_id: string;
  client_id: string;
  seq: number;
  message_id: string;
  duplicate: boolean;
  author_participant_id: string | null;
}

export interface ErrorFrame {
  type: 'error';
  code: string;
  message: string;
  conversation_id?: string;
  client_id?: string;
}

export interface ClientEvents {
  state: (state: ConnectionState, detail?: { code?: number; reason?: string } | unknown) => void;
  open: () => void;
  subscribed: (frame: Subscribed) => void;
  message: (message: Message) => void;
  message_updated: (message: Message) => void;
  ack: (frame: Ack) => void;
  /** `identity` only on agent and operator connections; end users get `participant_id` alone. */
  typing: (frame: { conversation_id: string; participant_id: string | null; identity?: string }) => void;
  read: (frame: { conversation_id: string; participant_id: string | null; identity?: string; seq: number }) => void;
  presence: (frame: { conversation_id: string; identity: string; state: 'joined' | 'left' }) => void;
  assigned: (frame: { conversation_id: string; owner_type: string | null; owner_id: string | null }) => void;
  unsubscribed: (frame: { conversation_id: string; reason: 'client' | 'token_scope' | 'reassigned' | 'removed' }) => void;
  error: (frame: ErrorFrame) => void;
  refreshed: (frame: { expires_at: string }) => void;
  watching: (frame: {}) => void;
  conversation: (frame: { event: string; conversation_id: string; conversation?: any; last_message?: Message }) => void;
  unwatched: (frame: {}) => void;
  /** Every frame but `pong`, as received (after the typed event). */
  frame: (frame: { type: string; [k: string]: unknown }) => void;
}

export class Emitter<E = any> {
  on<K extends keyof E & string>(event: K, fn: E[K]): () => void;
  /** Any other frame type the server sends is emitted under its `type`. */
  on<K extends string>(event: Exclude<K, keyof E>, fn: (frame: any) => void): () => void;
  off<K extends keyof E & string>(event: K, fn: E[K]): void;
  off(event: string, fn: (...args: any[]) => void): void;
  once<K extends keyof E & string>(event: K, fn: E[K]): () => void;
  once<K extends string>(event: Exclude<K, keyof E>, fn: (frame: any) => void): () => void;
  emit(event: string, ...args: any[]): void;
}

export interface SendOptions {
  text?: string;
  medias?: MediaRef[];
  /** Reuse to retry a send the caller gave up on: the server never stores it twice. */
  clientId?: string;
  visibility?: 'public' | 'internal';
  via?: { account_id: string };
}

export interface Page {
  result: Message[];
  has_more: boolean;
}

export interface HistoryOptions {
  before?: number;
  after?: number;
  pageSize?: number;
}

export interface Media {
  id: string;
  url: string;
  content_type: string;
  size: number;
  sha256?: string;
  width?: number;
  height?: number;
  [k: string]: unknown;
}

export class SwitchboardClient extends Emitter<ClientEvents> {
  constructor(options: ClientOptions);
  readonly state: ConnectionState;
  readonly connected: boolean;
  /** The current token (also used for REST calls). */
  token: string | null;
  rest: Rest;
  /** Starts connecting; again after `close()`, or after `expired` (then `getToken` is asked for a new token). */
  connect(): this;
  /** Closes for good: no reconnect; unacked sends reject with code `stopped`. */
  close(): void;
  subscribe(conversationId: string, position?: { since?: number; epoch?: string }): void;
  unsubscribe(conversationId: string): void;
  position(conversationId: string): { seq: number | null; epoch: string | null; subscribed: boolean } | null;
  rooms(): string[];
  watchConversations(): void;
  unwatchConversations(): void;
  send(conversationId: string, message: SendOptions): Promise<Ack> & { clientId: string };
  unacked(): string[];
  typing(conversationId: string): boolean;
  read(conversationId: string, seq: number): boolean;
  refreshToken(): Promise<{ expires_at: string | null }>;
  history(conversationId: string, options?: HistoryOptions): Promise<Page>;
  pages(conversationId: string, options?: { before?: number; pageSize?: number }): AsyncGenerator<Page>;
  upload(file: Blob, options?: { conversationId?: string; filename?: string }): Promise<Media>;
  request<T = any>(method: string, path: string, body?: unknown): Promise<T>;
}

export class ClientError extends Error {
  constructor(code: string, message: string, extra?: object);
  code: string;
  clientId?: string;
  conversationId?: string;
}

export class ApiError extends Error {
  constructor(status: number, code: string, message: string);
  status: number;
  code: string;
  retryAfter: number;
}

export class Rest {
  constructor(options: { url?: string; auth: string | (() => string | null); fetch?: typeof fetch; maxInFlight?: number });
  call<T = any>(method: string, path: string, body?: unknown): Promise<T>;
  history(conversationId: string, options?: HistoryOptions): Promise<Page>;
  pages(conversationId: string, options?: { before?: number; pageSize?: number }): AsyncGenerator<Page>;
  upload(file: Blob, options?: { conversationId?: string; filename?: string }): Promise<Media>;
}

export const BACKOFF_DEFAULTS: Readonly<Required<BackoffOptions>>;
export function backoffDelay(attempt: number, options?: BackoffOptions, random?: () => number): number;
export class Backoff {
  constructor(options?: BackoffOptions, random?: () => number);
  attempt: number;
  next(): number;
  reset(): void;
}

export const PROTOCOL: 'switchboard.v1';
export const CLOSE_INVALID_TOKEN: 4001;
export const CLOSE_TOKEN_EXPIRED: 4002;

/** The transport alone (no rooms); most users want SwitchboardClient. */
export class Connection {
  constructor(options: ClientOptions & {
    url: string;
    obtainToken: (reason: 'connect' | 'rejected') => Promise<string | null>;
    onOpen: () => void;
    onFrame: (frame: any) => void;
    onState: (state: ConnectionState, detail?: unknown) => void;
  });
  readonly state: ConnectionState;
  readonly isOpen: boolean;
  start(): void;
  stop(): void;
  send(frame: object): boolean;
  probe(): void;
  reconnectNow(): void;
}

export function decodeToken(token: string): { sub: string; tid: string; exp: number; convs?: string[]; [k: string]: unknown } | null;
export function newClientId(): string;
