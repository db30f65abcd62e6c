// Shared by the browser scenarios (e2e.mjs and its parts in e2e/, restart, inbox, inbox_assign,
// templates, widget): launching Debian's Chromium through playwright-core, REST clients, a signed
// Twilio webhook, console-error collection, waits on what the page shows, and the inbox's list
// and tab counts.
// Every wait has a deadline and fails with what the page showed instead.

import { chromium } from 'playwright-core';
import crypto from 'node:crypto';
import fs from 'node:fs';
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

/**
 * `log(...)` with the seconds since start; `guard(ms)` exits the process if a step hangs;
 * `finish(main, guard, done)` runs `main`, then clears the guard and logs `done`, or exits 1
 * naming the step that failed.
 */
export function runner(name) {
  const started = Date.now();
  const state = { step: 'start' };
  state.log = (...a) => console.log(`[${name} ${((Date.now() - started) / 1000).toFixed(1)}s]`, ...a);
  state.guard = (ms) =>
    setTimeout(() => {
      console.error(`${name}: timed out during step "${state.step}"`);
      process.exit(1);
    }, ms);
  state.finish = (main, guard, done) =>
    main().then(
      () => {
        clearTimeout(guard);
        state.log(done);
        process.exit(0);
      },
      (e) => {
        clearTimeout(guard);
        console.error(`${name} FAILED at step "${state.step}": ${e.stack || e}`);
        process.exit(1);
      },
    );
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

/**
 * Posts a webhook to `base` the way Twilio does: form-encoded, signed with X-Twilio-Signature
 * (HMAC-SHA1 of the URL and the sorted fields under the account's auth token).
 */
export async function twilioHook(base, authToken, accountId, fields) {
  const url = `${base}/v1.0/hooks/twilio/${accountId}`;
  const params = Object.entries(fields);
  const mac = crypto.createHmac('sha1', authToken).update(url);
  for (const [k, v] of [...params].sort((a, b) => (a[0] === b[0] ? (a[1] < b[1] ? -1 : 1) : a[0] < b[0] ? -1 : 1))) {
    mac.update(k + v);
  }
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded', 'X-Twilio-Signature': mac.digest('base64') },
    body: new URLSearchParams(params).toString(),
  });
  if (!res.ok) throw new Error(`twilio webhook -> ${res.status} ${await res.text()}`);
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

/**
 * The message history's scroll position once the room's first image has loaded: `{ top,
 * height, client }` of `#scroller` (at the newest message when `height - top - client` is small).
 */
export async function scrollAfterImage(page) {
  await page.waitForFunction(() => {
    const img = document.querySelector('#messages img');
    return img && img.complete && img.naturalWidth > 0;
  }, null, { timeout: WAIT });
  return page.evaluate(() => {
    const sc = document.querySelector('#scroller');
    return { top: sc.scrollTop, height: sc.scrollHeight, client: sc.clientHeight };
  });
}

/**
 * Types `text` in the composer and sends it: Enter with a keyboard, the Send button on a touch
 * screen (where Enter is a new line).
 */
export async function send(page, text) {
  const box = page.locator('#composer-text');
  await box.click();
  await box.pressSequentially(text, { delay: 5 });
  const touch = await page.evaluate(() => matchMedia('(pointer: coarse)').matches && !matchMedia('(pointer: fine)').matches);
  if (touch) await page.click('#composer button[type=submit]');
  else await box.press('Enter');
}

/**
 * WCAG contrast problems among the visible text of `root` (selector): each element with text of
 * its own, its computed colour (faded by any opacity on the way) against the first opaque
 * background behind it; below 4.5:1 (3:1 for large text) is reported. A bubble still sending
 * and disabled controls are left out (WCAG exempts inactive parts).
 */
export function contrastProblems(page, root) {
  return page.evaluate((sel) => {
    const rgba = (c) => {
      const m = /rgba?\(([^)]+)\)/.exec(c);
      if (!m) return null;
      const [r, g, b, a = 1] = m[1].split(/[ ,/]+/).filter(Boolean).map(Number);
      return { r, g, b, a };
    };
    const lum = ({ r, g, b }) => {
      const f = (v) => {
        const x = v / 255;
        return x <= 0.03928 ? x / 12.92 : ((x + 0.055) / 1.055) ** 2.4;
      };
      return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
    };
    const over = (fg, bg) => ({
      r: fg.r * fg.a + bg.r * (1 - fg.a),
      g: fg.g * fg.a + bg.g * (1 - fg.a),
      b: fg.b * fg.a + bg.b * (1 - fg.a),
      a: 1,
    });
    const out = [];
    for (const el of document.querySelectorAll(`${sel} *`)) {
      const own = [...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim());
      if (!own || !el.getClientRects().length || el.closest('.sr-only, [hidden], .pending, :disabled')) continue;
      // Opacity between the text and its background fades the text into it.
      let fade = 1;
      let bg = null;
      for (let e = el; e && !bg; e = e.parentElement) {
        const es = getComputedStyle(e);
        const c = rgba(es.backgroundColor);
        if (c && c.a === 1) bg = c;
        else fade *= Number(es.opacity);
      }
      bg = bg || { r: 255, g: 255, b: 255, a: 1 };
      const cs = getComputedStyle(el);
      const color = rgba(cs.color);
      const fg = over({ ...color, a: color.a * fade }, bg);
      const [hi, lo] = [lum(fg), lum(bg)].sort((a, b) => b - a);
      const ratio = (hi + 0.05) / (lo + 0.05);
      const size = parseFloat(cs.fontSize);
      const large = size >= 24 || (size >= 18.66 && Number(cs.fontWeight) >= 700);
      if (ratio < (large ? 3 : 4.5)) out.push(`${el.className || el.tagName} "${el.textContent.trim().slice(0, 30)}" ${ratio.toFixed(2)}:1`);
    }
    return out;
  }, root);
}

/** Signs the operator in with an API key and waits for the live connection. */
export async function signIn(page, base, apiKey, identity) {
  await page.goto(base);
  // The API-key form is folded away under the email and password sign-in.
  await page.click('#key-login summary');
  await page.fill('#login-key', apiKey);
  await page.fill('#login-identity', identity);
  await page.press('#login-identity', 'Enter');
  await expectConn(page, 'connected', identity);
}

/** Signs an agent in with email and password and waits for the live connection. */
export async function signInPassword(page, base, email, password, who) {
  await page.goto(base);
  await page.fill('#login-email', email);
  await page.fill('#login-password', password);
  await page.press('#login-password', 'Enter');
  await expectConn(page, 'connected', who);
}

const AXE = path.join(ROOT, 'tests', 'browser', 'node_modules', 'axe-core', 'axe.min.js');

/**
 * axe-core (WCAG 2.x A and AA rules) on what `page` shows now: throws listing every serious or
 * critical violation, with the elements concerned.
 */
export async function axeClean(page, view) {
  if (!(await page.evaluate(() => typeof window.axe !== 'undefined'))) {
    await page.addScriptTag({ content: fs.readFileSync(AXE, 'utf8') });
  }
  const result = await page.evaluate(async () => {
    // eslint-disable-next-line no-undef
    const r = await axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] } });
    return r.violations
      .filter((v) => v.impact === 'serious' || v.impact === 'critical')
      .map((v) => `${v.impact} ${v.id}: ${v.help}\n      ${v.nodes.slice(0, 5).map((n) => `${n.target.join(' ')} — ${n.failureSummary.replace(/\n/g, ' ')}`).join('\n      ')}`);
  });
  assert(!result.length, `axe-core on ${view}:\n  ${result.join('\n  ')}`);
  return result;
}

/** Calls without credentials (sessions, invites): `anon(method, path, body)` → `{status, body}`. */
export function anonClient(base) {
  return async function anon(method, p, body) {
    const res = await fetch(`${base}/v1.0${p}`, { method, headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
    return { status: res.status, body: await res.json().catch(() => null) };
  };
}

/** The inbox list as shown: `[{id, name, unread, owner}]`. */
export const listed = (page) =>
  page.$$eval('#conv-list button.conv', (bs) =>
    bs.map((b) => ({
      id: b.dataset.id,
      name: b.querySelector('.conv-name').textContent,
      unread: (b.querySelector('.unread') || { textContent: '0' }).textContent,
      owner: (b.querySelector('.conv-owner bdi') || { textContent: '' }).textContent,
    })),
  );

/** The inbox list shows exactly `names` (any order). */
export async function expectList(page, names, who) {
  await page
    .waitForFunction((want) => {
      const got = [...document.querySelectorAll('#conv-list .conv-name')].map((e) => e.textContent).sort();
      return JSON.stringify(got) === JSON.stringify([...want].sort());
    }, names, { timeout: WAIT })
    .catch(async () => {
      throw new Error(`${who}: list shows ${JSON.stringify((await listed(page)).map((r) => r.name))}, expected ${JSON.stringify(names)}`);
    });
}

/** The Mine / Unassigned / All tabs show `want`, and the server counts the same. */
export async function expectCounts(page, want, who) {
  await page
    .waitForFunction((w) => ['mine', 'unassigned', 'all'].every((t) => document.querySelector(`[data-count=${t}]`).textContent === String(w[t])), want, { timeout: WAIT })
    .catch(async () => {
      const got = await page.$$eval('[data-count]', (els) => els.map((e) => `${e.dataset.count}=${e.textContent}`).join(' '));
      throw new Error(`${who}: tab counts ${got}, expected ${JSON.stringify(want)}`);
    });
  // The tabs show the server's counts (GET /v1.0/conversations/counts under the page's filters).
  const server = await page.evaluate(() => {
    const { store, chat } = window.switchboard;
    return chat.api.conversationCounts({ ownerId: store.identity, status: store.filter.status, q: store.filter.q });
  });
  for (const t of ['mine', 'unassigned', 'all']) assert(server[t] === want[t], `${who}: the server counts ${t}=${server[t]}, expected ${want[t]}`);
  assert(server.capped === false, `${who}: counts not capped`);
}
