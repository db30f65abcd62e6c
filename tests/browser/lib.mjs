// Shared by the browser scenarios (e2e.mjs, restart.mjs): launching Debian's Chromium through
// playwright-core, a REST client, console-error collection, and waits on what the page shows.
// Every wait has a deadline and fails with what the page showed instead.

import { chromium } from 'playwright-core';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const SHOTS = path.join(ROOT, 'target', 'screenshots');
export const WAIT = 10_000;
const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';

/** Headless Chromium with the flags the issue asks for (no sandbox, no GPU, no phoning home). */
export function launch() {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}

/** `log(...)` with the seconds since start; `guard(ms)` exits the process if a step hangs. */
export function runner(name) {
  const started = Date.now();
  const state = { step: 'start' };
  state.log = (...a) => console.log(`[${name} ${((Date.now() - started) / 1000).toFixed(1)}s]`, ...a);
  state.guard = (ms) =>
    setTimeout(() => {
      console.error(`${name}: timed out during step "${state.step}"`);
      process.exit(1);
    }, ms);
  return state;
}

/** A REST client for `base` with an API key; throws on any non-2xx answer. */
export function restClient(base, apiKey) {
  return async function rest(method, p, body) {
    const res = await fetch(`${base}/v1.0${p}`, {
      method,
      headers: { Authorization: `Bearer ${apiKey}`, 'Content-Type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const data = await res.json().catch(() => null);
    if (!res.ok) throw new Error(`${method} ${p} -> ${res.status} ${JSON.stringify(data)}`);
    return data;
  };
}

export function assert(cond, message) {
  if (!cond) throw new Error(`assertion failed: ${message}`);
}

/**
 * Collects console errors and page errors of `page` into `errors`; `expected(text)` may
 * excuse a console error (e.g. connection failures while the server is down on purpose).
 */
export function watchConsole(page, who, errors, expected = () => false) {
  page.on('console', (msg) => {
    if (msg.type() === 'error' && !expected(msg.text())) errors.push(`${who} console.error: ${msg.text()}`);
  });
  page.on('pageerror', (e) => errors.push(`${who} page error: ${e.message}`));
}

/** Every frame the page sends and receives, over every socket it opens. */
export function recordFrames(page) {
  const frames = [];
  page.on('websocket', (ws) => {
    ws.on('framesent', (f) => frames.push({ dir: 'out', ...JSON.parse(f.payload) }));
    ws.on('framereceived', (f) => frames.push({ dir: 'in', ...JSON.parse(f.payload) }));
  });
  return frames;
}

export const texts = (page) => page.$$eval('#messages .text', (els) => els.map((e) => e.textContent));

export async function waitForText(page, text, who) {
  await page
    .locator('#messages .text', { hasText: text })
    .first()
    .waitFor({ timeout: WAIT })
    .catch(() => {
      throw new Error(`${who} never showed message "${text}"`);
    });
}

/** The connection state line starts with `text` within `timeout`. */
export async function expectConn(page, text, who, timeout = WAIT) {
  await page.waitForFunction((t) => document.querySelector('#conn').textContent.startsWith(t), text, { timeout }).catch(async () => {
    const now = await page.textContent('#conn');
    throw new Error(`${who}: connection state "${now}", expected "${text}"`);
  });
}

/** Every text of `expected` appears exactly once, in this order, at the end of the list. */
export async function expectTail(page, expected, who, timeout = WAIT) {
  await page
    .waitForFunction(
      (exp) => {
        const all = [...document.querySelectorAll('#messages .text')].map((e) => e.textContent);
        return JSON.stringify(all.slice(-exp.length)) === JSON.stringify(exp);
      },
      expected,
      { timeout },
    )
    .catch(async () => {
      throw new Error(`${who}: last messages are ${JSON.stringify((await texts(page)).slice(-expected.length))}, expected ${JSON.stringify(expected)}`);
    });
  const all = await texts(page);
  for (const t of expected) {
    const n = all.filter((x) => x === t).length;
    assert(n === 1, `${who} shows "${t}" ${n} times`);
  }
}

/** Types `text` in the composer and presses Enter. */
export async function send(page, text) {
  const box = page.locator('#composer-text');
  await box.click();
  await box.pressSequentially(text, { delay: 5 });
  await box.press('Enter');
}

/** Signs the operator in with an API key and waits for the live connection. */
export async function signIn(page, base, apiKey, identity) {
  await page.goto(base);
  await page.fill('#login-key', apiKey);
  await page.fill('#login-identity', identity);
  await page.press('#login-identity', 'Enter');
  await expectConn(page, 'connected', identity);
}
