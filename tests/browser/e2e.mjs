// End-to-end test of the chat page in Debian's headless Chromium, driven by playwright-core.
//
//   node tests/browser/e2e.mjs <base url> <api key> [twilio stub url]
//
// One run, one browser, two pages: an operator (API key, desktop) and an end user (#token= link,
// phone width) in one seeded conversation. This file seeds the data over REST, opens the pages
// and runs the parts in order, each in its own module under e2e/:
// - e2e/reading.mjs: the operator's list and rooms (names, unread counts, right-to-left text,
//   safe links, day separators, infinite scroll) and the end user opening its link;
// - e2e/chat.mjs: typing, chat both ways, contrast, read receipts, a network drop, a reload;
// - e2e/operator.mjs: participants, assignment and status from the page; with a Twilio stub
//   URL, an inbound SMS pushed live to the list, the reply and its delivery status;
// then, here: accessibility basics (labels, focus order), screenshots, the operator on a phone
// opening a room at its newest message, and the end user leaving ("Leave" not landing on the
// operator sign-in). Any console error or page error fails the run.
// Screenshots go to target/screenshots/; with UPDATE_SCREENSHOT=1 one is copied to docs/chat.png
// (the README's picture), so an ordinary test run never changes a tracked file.

import fs from 'node:fs';
import path from 'node:path';
import { chat } from './e2e/chat.mjs';
import { manage, sms } from './e2e/operator.mjs';
import { reading, seedIntl } from './e2e/reading.mjs';
import { ROOT, SHOTS, WAIT, assert, launch, recordFrames, restClient, runner, scrollAfterImage, watchConsole } from './lib.mjs';

const [base, apiKey, twilioStub] = process.argv.slice(2);
if (!base || !apiKey) {
  console.error('usage: node e2e.mjs <base url> <api key> [twilio stub url]');
  process.exit(2);
}
const run = runner('e2e');
const { log } = run;
const errors = [];
const rest = restClient(base, apiKey);
// A hard stop so a hung browser can never hang the Rust test.
const deadline = run.guard(150_000);

async function main() {
  fs.mkdirSync(SHOTS, { recursive: true });

  run.step = 'seed data over REST';
  const conv = await rest('POST', '/conversations', { name: 'Order #1042 — Alice' });
  await rest('POST', `/conversations/${conv.id}/participants`, { address: { type: 'webchat', target: 'alice', name: 'Alice' } });
  for (let i = 1; i <= 40; i++) await rest('POST', `/conversations/${conv.id}/messages`, { text: `Earlier message ${i}` });
  await rest('POST', `/conversations/${conv.id}/messages`, {
    text: 'Your parcel label:',
    medias: [{ url: `${base}/img/logo.svg`, content_type: 'image/svg+xml' }],
  });
  // An agent account, for the picker (its presence shows there).
  await rest('POST', '/agents', { email: 'ann@example.com', name: 'Ann', role: 'agent', identity: 'agent-ann' });
  const other = await rest('POST', '/conversations', { name: 'Billing question' });
  await rest('POST', `/conversations/${other.id}/messages`, { text: 'Was I charged twice?' });
  await rest('POST', `/conversations/${other.id}/messages`, { text: 'Invoice 88-311 attached.' });
  const { token } = await rest('POST', '/tokens', { identity: 'alice', conversation_ids: [conv.id] });
  const intl = await seedIntl(rest);

  const browser = await launch();
  log('chromium', browser.version());
  const opCtx = await browser.newContext({ viewport: { width: 1180, height: 760 } });
  const userCtx = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
  const op = await opCtx.newPage();
  const user = await userCtx.newPage();
  watchConsole(op, 'operator', errors);
  watchConsole(user, 'end user', errors);
  const userFrames = recordFrames(user); // frames the end user's page sent and received
  const opFrames = recordFrames(op);
  let listRequests = 0; // GET /v1.0/conversations by the operator's page (the list over REST)
  op.on('request', (r) => {
    if (r.method() === 'GET' && new URL(r.url()).pathname === '/v1.0/conversations') listRequests += 1;
  });

  try {
    const t = { base, apiKey, twilioStub, rest, run, log, op, user, userCtx, opFrames, userFrames, conv, other, intl, token };
    t.listRequests = () => listRequests;
    await reading(t);
    await chat(t);
    await manage(t);
    if (twilioStub) await sms(t);

    run.step = 'accessibility basics';
    for (const [page, who] of [
      [op, 'operator'],
      [user, 'end user'],
    ]) {
      const unlabeled = await page.evaluate(() =>
        [...document.querySelectorAll('input, textarea, select, button')]
          .filter((el) => el.offsetParent !== null)
          .filter((el) => !(el.labels && el.labels.length) && !el.getAttribute('aria-label') && !el.textContent.trim())
          .map((el) => el.id || el.outerHTML.slice(0, 60)),
      );
      assert(!unlabeled.length, `${who}: controls without a label: ${unlabeled}`);
    }
    await op.focus('#composer-text');
    // Back out of the composer's own controls (attach, Reply / Private note).
    for (let i = 0; i < 6 && (await op.evaluate(() => !!document.activeElement.closest('#composer'))); i++) await op.keyboard.press('Shift+Tab');
    const beforeComposer = await op.evaluate(() => (document.activeElement.closest('#scroller') ? 'history' : document.activeElement.id));
    assert(beforeComposer === 'history', `focus order: before the composer comes the message history, got ${beforeComposer}`);

    run.step = 'screenshots';
    await op.evaluate(() => {
      const sc = document.querySelector('#scroller');
      sc.scrollTop = sc.scrollHeight;
    });
    await user.locator('#composer-text').pressSequentially('One more question', { delay: 10 });
    await op.waitForFunction(() => document.querySelector('#typing').textContent.includes('alice is typing'), null, {
      timeout: WAIT,
    });
    await op.locator('#composer-text').blur();
    const shot = path.join(SHOTS, 'chat.png');
    await op.screenshot({ path: shot });
    await user.screenshot({ path: path.join(SHOTS, 'chat-phone.png') });
    log(`screenshots: ${shot}, ${path.join(SHOTS, 'chat-phone.png')}`);
    if (process.env.UPDATE_SCREENSHOT === '1') {
      fs.mkdirSync(path.join(ROOT, 'docs'), { recursive: true });
      fs.copyFileSync(shot, path.join(ROOT, 'docs', 'chat.png'));
      log('copied to docs/chat.png');
    }

    run.step = 'operator on a phone opens a room at its newest message';
    await op.setViewportSize({ width: 390, height: 844 });
    await op.click('#back');
    await op.click(`#conv-list button[data-id="${other.id}"]`);
    await op.click('#back');
    await op.click(`#conv-list button[data-id="${conv.id}"]`);
    const opPhone = await scrollAfterImage(op);
    assert(opPhone.client > 0 && opPhone.height - opPhone.top - opPhone.client < 40, `operator phone at the newest message: ${JSON.stringify(opPhone)}`);
    log(`phone: the room opened at its newest message (scrollTop ${opPhone.top} of ${opPhone.height})`);

    run.step = 'the end user leaves';
    await user.click('#signout');
    assert(await user.isVisible('#left'), 'leaving shows the goodbye');
    assert(!(await user.isVisible('#login')), 'leaving does not show the operator sign-in');
    await user.reload();
    await user.locator('#left').waitFor({ timeout: WAIT });
    assert(!(await user.isVisible('#login')) && !(await user.isVisible('#app')), 'after leaving, a reload neither reopens the chat nor asks for an API key');
    log('end user left: a goodbye, not the operator sign-in (also after a reload)');

    run.step = 'console errors';
    assert(!errors.length, `console errors:\n  ${errors.join('\n  ')}`);
  } catch (e) {
    for (const [page, name] of [
      [op, 'operator'],
      [user, 'user'],
    ]) {
      await page.screenshot({ path: path.join(SHOTS, `failure-${name}.png`) }).catch(() => {});
    }
    if (errors.length) console.error(`console errors so far:\n  ${errors.join('\n  ')}`);
    throw e;
  } finally {
    await browser.close();
  }
}

run.finish(main, deadline, 'e2e: all scenarios passed');
