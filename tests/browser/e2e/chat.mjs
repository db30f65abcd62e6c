// The e2e run's second part (see e2e.mjs): the operator and the end user chatting. The end
// user's typing shows on the operator side; on a touch screen Enter is a new line and the
// placeholder fits a phone; both sides show the same messages once each and in order; the end
// user sees "Support", never identities; every visible text meets WCAG AA contrast; read
// receipts; the end user's network drops while the operator sends 3 messages (and the end user
// queues one): after the reconnect (a subscribe with `since` and `epoch`) each arrives exactly
// once over the wire; a reload restores the same history.

import { WAIT, assert, contrastProblems, expectConn, expectTail, send, texts } from '../lib.mjs';

/** Chat both ways, a network drop and a reload, in the room both pages have open. */
export async function chat(t) {
  const { op, user, userCtx, userFrames, run, log } = t;

  run.step = 'typing indicator';
  const ubox = user.locator('#composer-text');
  await ubox.click();
  await ubox.pressSequentially('Hi, where is my parcel?', { delay: 10 });
  await op.waitForFunction(() => document.querySelector('#typing').textContent.includes('alice is typing'), null, {
    timeout: WAIT,
  });
  log('operator sees "alice is typing…"');
  // On a touch screen Enter is a new line; the Send button sends.
  await ubox.press('Enter');
  assert((await ubox.inputValue()) === 'Hi, where is my parcel?\n', `Enter on touch inserts a new line: ${JSON.stringify(await ubox.inputValue())}`);
  assert(!(await user.$('#messages .msg.pending')), 'Enter on touch sent nothing');
  const fits = await user.evaluate(() => {
    const ta = document.querySelector('#composer-text');
    const cs = getComputedStyle(ta);
    const ctx = document.createElement('canvas').getContext('2d');
    ctx.font = `${cs.fontWeight} ${cs.fontSize} ${cs.fontFamily}`;
    const room = ta.clientWidth - parseFloat(cs.paddingLeft) - parseFloat(cs.paddingRight);
    return { text: ta.placeholder, width: ctx.measureText(ta.placeholder).width, room };
  });
  assert(fits.width <= fits.room, `the phone placeholder fits: ${JSON.stringify(fits)}`);
  await user.click('#composer button[type=submit]');

  run.step = 'chat both ways';
  const convo = ['Hi, where is my parcel?'];
  await expectTail(op, convo, 'operator');
  await send(op, 'Hello Alice! Let me check that for you.');
  convo.push('Hello Alice! Let me check that for you.');
  await send(user, 'Thanks!');
  convo.push('Thanks!');
  await send(op, 'It left our warehouse this morning.');
  convo.push('It left our warehouse this morning.');
  await expectTail(op, convo, 'operator');
  await expectTail(user, convo, 'end user');
  await op.waitForFunction(() => document.querySelector('#typing').textContent === '', null, { timeout: WAIT });
  await user.waitForFunction(() => !document.querySelector('#messages .msg.pending'), null, { timeout: WAIT });
  log('both sides show the same 4 messages in order');
  const authors = await user.$$eval('#messages .msg.theirs .author', (els) => [...new Set(els.map((e) => e.textContent))]);
  assert(JSON.stringify(authors) === '["Support"]', `the end user sees "Support", never identities: ${authors}`);
  for (const [page, who] of [
    [op, 'operator'],
    [user, 'end user'],
  ]) {
    const bad = await contrastProblems(page, '#app');
    assert(!bad.length, `${who}: text below WCAG AA contrast:\n  ${bad.join('\n  ')}`);
    const mine = await page.$$('#messages .msg.mine:not(.pending) .meta');
    assert(mine.length, `${who}: the contrast check saw own bubbles`);
  }
  log('contrast: every visible text of both pages at least 4.5:1 (own blue bubbles included)');

  run.step = 'read receipts';
  await user.waitForFunction(
    () => {
      const mine = [...document.querySelectorAll('#messages .msg.mine .status')];
      return mine.length && mine[mine.length - 1].textContent === 'read';
    },
    null,
    { timeout: WAIT },
  );
  log('end user sees its message marked read');

  run.step = 'network drop while the operator sends 3 messages';
  await userCtx.setOffline(true);
  await expectConn(user, 'reconnecting', 'end user');
  const gap = ['First while you were away', 'Second while you were away', 'Third while you were away'];
  for (const t of gap) await send(op, t);
  await send(user, 'Typed while offline');
  await user.locator('#messages .msg.pending').first().waitFor({ timeout: WAIT });
  await expectTail(op, [...convo, ...gap], 'operator');
  assert(!(await texts(user)).includes(gap[0]), 'the end user is really offline');
  const mark = userFrames.length;
  await userCtx.setOffline(false);
  await expectConn(user, 'connected', 'end user');
  const after = [...convo, ...gap, 'Typed while offline'];
  await expectTail(user, after, 'end user');
  await expectTail(op, after, 'operator');
  const resumed = userFrames.slice(mark).find((f) => f.dir === 'out' && f.type === 'subscribe');
  assert(resumed && resumed.since > 0 && resumed.epoch, `resubscribed with since and epoch: ${JSON.stringify(resumed)}`);
  for (const t of gap) {
    const n = userFrames.filter((f) => f.dir === 'in' && f.type === 'message' && f.message.text === t).length;
    assert(n === 1, `"${t}" reached the end user ${n} times over the wire`);
  }
  const sends = userFrames.filter((f) => f.dir === 'out' && f.type === 'send' && f.text === 'Typed while offline');
  assert(sends.length === 1, `the queued message was sent ${sends.length} times`);
  log(`after the reconnect (subscribe since=${resumed.since}): the 3 missed messages and the queued one appear exactly once`);

  run.step = 'reload restores the same history';
  await user.reload();
  await expectConn(user, 'connected', 'end user');
  await expectTail(user, after, 'end user');
  const all = await texts(user);
  assert(new Set(all).size === all.length, 'no duplicate after reload');
  log(`end user reloaded: ${all.length} messages, no duplicates`);

}
