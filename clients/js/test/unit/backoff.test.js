// Unit tests of the reconnect delays: growth, cap, jitter bounds, reset, bad options.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Backoff, backoffDelay, BACKOFF_DEFAULTS } from '../../src/index.js';

test('the ceiling doubles from baseMs and stops at maxMs', () => {
  const top = () => 0; // no jitter taken off: the ceiling itself
  const o = { baseMs: 100, maxMs: 1000, factor: 2, jitter: 0.5 };
  assert.deepEqual(
    [0, 1, 2, 3, 4, 5, 50, 5000].map((n) => backoffDelay(n, o, top)),
    [100, 200, 400, 800, 1000, 1000, 1000, 1000],
  );
});

test('jitter takes at most its share off the ceiling', () => {
  const o = { baseMs: 1000, maxMs: 1000, jitter: 0.25 };
  assert.equal(backoffDelay(0, o, () => 0), 1000);
  assert.equal(backoffDelay(0, o, () => 0.5), 875);
  assert.equal(backoffDelay(0, o, () => 0.999999), 750);
  for (let i = 0; i < 1000; i++) {
    const d = backoffDelay(i % 20, BACKOFF_DEFAULTS);
    const ceiling = Math.min(BACKOFF_DEFAULTS.maxMs, BACKOFF_DEFAULTS.baseMs * 2 ** (i % 20));
    assert.ok(d >= ceiling * (1 - BACKOFF_DEFAULTS.jitter) && d <= ceiling, `${d} outside [${ceiling / 2}, ${ceiling}]`);
  }
});

test('jitter spreads clients: the same attempt gives different delays', () => {
  const seen = new Set();
  for (let i = 0; i < 50; i++) seen.add(backoffDelay(5, {}));
  assert.ok(seen.size > 10, `only ${seen.size} distinct delays out of 50`);
});

test('no jitter means exact ceilings', () => {
  assert.equal(backoffDelay(3, { baseMs: 10, maxMs: 10000, jitter: 0 }), 80);
});

test('Backoff counts attempts and resets', () => {
  const b = new Backoff({ baseMs: 10, maxMs: 50, jitter: 0 });
  assert.deepEqual([b.next(), b.next(), b.next(), b.next(), b.next()], [10, 20, 40, 50, 50]);
  b.reset();
  assert.equal(b.next(), 10);
});

test('a huge attempt count stays finite and capped', () => {
  assert.equal(backoffDelay(1e9, { baseMs: 500, maxMs: 15000, jitter: 0 }), 15000);
  const b = new Backoff({ jitter: 0 });
  for (let i = 0; i < 10000; i++) b.next();
  assert.ok(b.attempt < 10, `attempt grew to ${b.attempt}`);
});

test('nonsense options are refused', () => {
  assert.throws(() => backoffDelay(0, { baseMs: 100, maxMs: 10 }), RangeError);
  assert.throws(() => backoffDelay(0, { jitter: 2 }), RangeError);
  assert.throws(() => backoffDelay(0, { factor: 0.5 }), RangeError);
  assert.throws(() => new Backoff({ baseMs: -1 }), RangeError);
});
