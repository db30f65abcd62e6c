// The chat page survives a server restart (Redis backend) and fills the gap, in Debian's
// headless Chromium.
//
//   node tests/browser/restart.mjs <node a url> <node b url> <api key>
//
// Two switchboard processes share one Redis; both pages are served by node A. The Rust side
// (tests/browser_restart.rs) owns the processes and reacts to two lines this script prints:
// `@kill` (SIGKILL node A, answer `killed`) and `@restart` (start node A again on the same
// port, answer `restarted`).
//
// Scenario: an operator (API key) and an end user (client-token link) show a conversation with
// messages, one of them typed in the page. Node A is killed: both pages visibly say
// "reconnecting…". While it is down, 3 messages are posted over REST through node B (the
// pages cannot see them). Node A restarts: both pages reconnect on their own, resume with
// `since` and `epoch`, and show every message exactly once, in order — the ones from before
// the kill, the gap, and new ones sent afterwards from REST and from the page. The missed
// messages cross the end user's socket exactly once. No console errors, except the browser's
// own reports of failed connection attempts while node A is down.

import readline from 'node:readline';
import path from 'node:path';
import fs from 'node:fs';
import {
  SHOTS,
  assert,
  expectConn,
  expectTail,
  launch,
  recordFrames,
  restClient,
  runner,
  send,
  signIn,
  texts,
  watchConsole,
} from './lib.mjs';

const [baseA, baseB, apiKey] = process.argv.slice(2);
if (!baseA || !baseB || !apiKey) {
  console.error('usage: node restart.mjs <node a url> <node b url> <api key>');
  process.exit(2);
}
const run = runner('restart');
const { log } = run;
const deadline = run.guard(180_000);
const RECONNECT = 30_000; // backoff grows to a few seconds while the node is down
const restA = restClient(baseA, apiKey);
const restB = restClient(baseB, apiKey);
const errors = [];
let nodeDown = false;
let excused = 0;
// While node A is down the browser itself reports each failed attempt on the console (a
// request in flight at the SIGKILL ends as a reset or an empty response).
const expected = (text) => {
  const ok = nodeDown && /ERR_CONNECTION_REFUSED|ERR_CONNECTION_RESET|ERR_EMPTY_RESPONSE|WebSocket connection to .* failed/.test(text);
  if (ok) excused += 1;
  return ok;
};

const lines = readline.createInterface({ input: process.stdin })[Symbol.asyncIterator]();

/** Asks the Rust side to act on node A and waits for its answer. */
async function ask(command, answer) {
  console.log(command);
  const { value, done } = await lines.next();
  assert(!done && value.trim() === answer, `expected "${answer}" from the test, got ${JSON.stringify(value)}`);
}

async function main() {
  fs.mkdirSync(SHOTS, { recursive: true });
  run.step = 'seed data over REST';
  const conv = await restA('POST', '/conversations', { name: 'Restart drill' });
  await restA('POST', `/conversations/${conv.id}/participants`, { address: { type: 'webchat', target: 'alice', name: 'Alice' } });
  const before = ['Before 1', 'Before 2', 'Before 3', 'Before 4', 'Before 5'];
  for (const text of before) await restA('POST', `/conversations/${conv.id}/messages`, { text });
  const { token } = await restA('POST', '/tokens', { identity: 'alice', conversation_ids: [conv.id] });

  const browser = await launch();
  const opCtx = await browser.newContext({ viewport: { width: 1180, height: 760 } });
  const userCtx = await browser.newContext({ viewport: { width: 390, height: 780 }, isMobile: true, hasTouch: true });
  const op = await opCtx.newPage();
  const user = await userCtx.newPage();
  watchConsole(op, 'operator', errors, expected);
  watchConsole(user, 'end user', errors, expected);
  const userFrames = recordFrames(user);
  const attempts = new Map([
    [op, 0],
    [user, 0],
  ]); // sockets each page opened
  for (const page of [op, user]) page.on('websocket', () => attempts.set(page, attempts.get(page) + 1));
  const pages = [
    [op, 'operator'],
    [user, 'end user'],
  ];
  try {
    run.step = 'both pages show the conversation';
    await signIn(op, baseA, apiKey, 'Olivia');
    await op.click(`#conv-list button[data-id="${conv.id}"]`);
    // A link in the older `?token=` form still works (and the page drops it from the URL).
    await user.goto(`${baseA}/?token=${encodeURIComponent(token)}`);
    await expectConn(user, 'connected', 'end user');
    assert(!user.url().includes('token'), `the token left the address bar, got ${user.url()}`);
    await send(op, 'Typed before the crash');
    const shown = [...before, 'Typed before the crash'];
    for (const [page, who] of pages) await expectTail(page, shown, who);
    await op.waitForFunction(() => !document.querySelector('#messages .msg.pending'), null, { timeout: 10_000 });
    log('both pages show the 6 messages');

    run.step = 'node A is killed';
    nodeDown = true;
    await ask('@kill', 'killed');
    for (const [page, who] of pages) {
      await expectConn(page, 'reconnecting', who);
      assert(await page.isVisible('#conn'), `${who}: the connection state is visible`);
    }
    log('both pages say "reconnecting…"');

    run.step = 'messages posted through node B while node A is down';
    const gap = ['While down 1', 'While down 2', 'While down 3'];
    for (const text of gap) await restB('POST', `/conversations/${conv.id}/messages`, { text });
    for (const [page, who] of pages) {
      assert(!(await texts(page)).includes(gap[0]), `${who} cannot have seen the gap yet`);
      await expectConn(page, 'reconnecting', who);
    }
    // Let each page fail to reconnect twice (backoff 0.5 s doubling), as after a real crash.
    const tried = new Map(attempts);
    await new Promise((resolve, reject) => {
      const give = setTimeout(() => reject(new Error(`pages tried to reconnect ${[...attempts.values()]} times`)), RECONNECT);
      const poll = setInterval(() => {
        if ([...attempts].every(([page, n]) => n >= tried.get(page) + 2)) {
          clearTimeout(give);
          clearInterval(poll);
          resolve();
        }
      }, 50);
    });
    for (const [page, who] of pages) await expectConn(page, 'reconnecting', who);
    log(`while node A is down the pages keep retrying (${excused} failed attempts reported on the console)`);
    const mark = userFrames.length;

    run.step = 'node A restarts; the pages reconnect and fill the gap';
    await ask('@restart', 'restarted');
    for (const [page, who] of pages) await expectConn(page, 'connected', who, RECONNECT);
    nodeDown = false;
    const all = [...shown, ...gap];
    for (const [page, who] of pages) await expectTail(page, all, who, RECONNECT);
    const resumed = userFrames.slice(mark).find((f) => f.dir === 'out' && f.type === 'subscribe');
    assert(resumed && resumed.since >= 6 && resumed.epoch, `the end user resubscribed with since and epoch: ${JSON.stringify(resumed)}`);
    for (const t of gap) {
      const n = userFrames.filter((f) => f.dir === 'in' && f.type === 'message' && f.message.text === t).length;
      assert(n === 1, `"${t}" reached the end user ${n} times over the wire`);
    }
    log(`both pages reconnected and show the 3 missed messages once (end user resumed since=${resumed.since})`);

    run.step = 'live again after the restart';
    await restA('POST', `/conversations/${conv.id}/messages`, { text: 'After the restart' });
    await send(user, 'Alice is back');
    const final = [...all, 'After the restart', 'Alice is back'];
    for (const [page, who] of pages) {
      await expectTail(page, final, who);
      const everything = await texts(page);
      assert(JSON.stringify(everything) === JSON.stringify(final), `${who} shows exactly ${JSON.stringify(everything)}`);
    }
    const history = (await restA('GET', `/conversations/${conv.id}/messages?page_size=100`)).result.map((m) => m.text);
    assert(JSON.stringify(history) === JSON.stringify(final), `the server's history is ${JSON.stringify(history)}`);
    await op.screenshot({ path: path.join(SHOTS, 'restart-operator.png') });
    log('both pages show all 11 messages exactly once, in the server\'s order');

    run.step = 'a fresh browser learns the read marker from the server';
    // Alice has read everything (her page sends `read` for what is on screen); she closes the
    // page, two messages arrive, and she opens the link in a new browser profile (no local
    // marker; `subscribed` tells it her participant and read marker): the page puts its "New
    // messages" divider right above the first unread one, not above her own last message.
    const aliceRead = async () => {
      const parts = (await restA('GET', `/conversations/${conv.id}/participants`)).result;
      return parts.find((p) => p.address.target === 'alice').last_read_seq;
    };
    for (let i = 0; (await aliceRead()) < final.length - 1; i++) {
      assert(i < 100, `alice's read marker stays at ${await aliceRead()}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    await user.close();
    const unread = ['Unread 1', 'Unread 2'];
    for (const text of unread) await restA('POST', `/conversations/${conv.id}/messages`, { text });
    const freshCtx = await browser.newContext({ viewport: { width: 390, height: 780 }, isMobile: true, hasTouch: true });
    const fresh = await freshCtx.newPage();
    watchConsole(fresh, 'fresh end user', errors);
    await fresh.goto(`${baseA}/?token=${encodeURIComponent(token)}`);
    await expectConn(fresh, 'connected', 'fresh end user');
    await expectTail(fresh, [...final, ...unread], 'fresh end user');
    const around = await fresh.evaluate(() => {
      const d = document.querySelector('#messages .divider');
      const text = (li) => (li && li.querySelector('.text') ? li.querySelector('.text').textContent : null);
      return d && [text(d.previousElementSibling), d.textContent, text(d.nextElementSibling)];
    });
    assert(
      JSON.stringify(around) === JSON.stringify([final[final.length - 1], 'New messages', 'Unread 1']),
      `the divider sits between what alice read and what she did not: ${JSON.stringify(around)}`,
    );
    await fresh.screenshot({ path: path.join(SHOTS, 'restart-fresh-profile.png') });
    log('a fresh profile shows "New messages" above the 2 unread ones (read marker from `subscribed`)');

    run.step = 'console errors';
    assert(!errors.length, `console errors:\n  ${errors.join('\n  ')}`);
  } catch (e) {
    for (const [page, who] of pages) {
      await page.screenshot({ path: path.join(SHOTS, `restart-failure-${who.replace(' ', '-')}.png`) }).catch(() => {});
    }
    if (errors.length) console.error(`console errors so far:\n  ${errors.join('\n  ')}`);
    throw e;
  } finally {
    await browser.close();
  }
}

run.finish(main, deadline, 'restart: all steps passed');
