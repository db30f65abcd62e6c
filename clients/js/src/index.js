// @switchboard/client: the browser and Node client of Switchboard's WebSocket and REST API.
// Plain ES modules, no build step, no runtime dependency. See README.md.

export { SwitchboardClient } from './client.js';
export { ClientError } from './frames.js';
export { Connection, PROTOCOL, CLOSE_INVALID_TOKEN, CLOSE_TOKEN_EXPIRED } from './connection.js';
export { Backoff, backoffDelay, BACKOFF_DEFAULTS } from './backoff.js';
export { Rest, ApiError } from './rest.js';
export { Emitter } from './emitter.js';
export { decodeToken, newClientId } from './token.js';
