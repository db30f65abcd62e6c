// Reconnect delays: exponential backoff with jitter.
//
// Attempt n (0-based) waits a random time in [ceiling * (1 - jitter), ceiling], where
// ceiling = min(maxMs, baseMs * factor^n). The randomness spreads the reconnects of many clients
// after a server restart over time instead of landing them all at once ("thundering herd"); the
// cap keeps a long outage from growing the wait without bound. A connection that stayed up for
// `stableAfterMs` resets the count (see connection.js), so a flapping server is not hammered
// but a single drop reconnects quickly.

/** @typedef {{baseMs?: number, maxMs?: number, factor?: number, jitter?: number}} BackoffOptions */

export const BACKOFF_DEFAULTS = Object.freeze({ baseMs: 500, maxMs: 15000, factor: 2, jitter: 0.5 });

/**
 * The wait before attempt `attempt` (0 = the first retry).
 * @param {number} attempt
 * @param {BackoffOptions} [options]
 * @param {() => number} [random] a number in [0, 1) (Math.random by default)
 * @returns {number} milliseconds, an integer
 */
export function backoffDelay(attempt, options = {}, random = Math.random) {
  const o = { ...BACKOFF_DEFAULTS, ...options };
  if (!(o.baseMs >= 0) || !(o.maxMs >= o.baseMs) || !(o.factor >= 1) || !(o.jitter >= 0 && o.jitter <= 1)) {
    throw new RangeError('backoff: need 0 <= baseMs <= maxMs, factor >= 1, 0 <= jitter <= 1');
  }
  const n = Math.max(0, Math.floor(attempt) || 0);
  // factor^n overflows to Infinity for large n; min() keeps that finite.
  const ceiling = Math.min(o.maxMs, o.baseMs * o.factor ** n);
  return Math.round(ceiling * (1 - o.jitter * random()));
}

/** Counts attempts and hands out their delays. */
export class Backoff {
  /** @param {BackoffOptions} [options] @param {() => number} [random] */
  constructor(options = {}, random = Math.random) {
    this.options = { ...BACKOFF_DEFAULTS, ...options };
    backoffDelay(0, this.options, () => 0); // validates now rather than on the first drop
    this.random = random;
    this.attempt = 0;
  }

  /** The delay for the next attempt, counting it. */
  next() {
    const d = backoffDelay(this.attempt, this.options, this.random);
    // Past the cap the count no longer matters; keep it small.
    if (this.options.baseMs * this.options.factor ** this.attempt < this.options.maxMs) this.attempt += 1;
    return d;
  }

  reset() {
    this.attempt = 0;
  }
}
