// End-to-end test of the chat page in Debian's headless Chromium, driven by playwright-core.
//
//   node tests/browser/e2e.mjs <base url> <api key> [twilio stub url]
//
// Scenarios: an operator (API key, desktop) and an end user (#token= link, phone width) chat both
// ways in one conversation and see each other's messages live and in order; the end user's
// typing shows on the operator side; read receipts; infinite scroll back through history (the
// end user's too, over REST with its client token, beyond the server's replay window); the
// end user's network drops while the operator sends 3 messages (and the end user queues one):
// after the reconnect every message is there exactly once; a reload restores the same history;
// the operator adds participants from the page. With a Twilio stub URL: an inbound SMS (signed
// webhook) from a new number appears live in the operator's list (pushed as a `conversation`
// frame of the page's list watch, with no REST list request) and pane, the operator's reply
// goes out through the stub (the Rust side checks what the stub received) and its delivery
// status moves to "delivered" on a signed status callback; the operator adds a phone number to
// a room. The page's inbox fixes (issue 19): Arabic/Hebrew laid out right to left, URLs as safe
// links, a phone opening a room at its newest message, text contrast (WCAG AA) on both pages,
// list buttons named with preview/time/channel, Escape, the skip link after sign-in, list times
// on one line, day separators, Enter as a new line on touch, the placeholder fitting a phone,
// the assign field cleared between rooms, and the end user's view (the room's name, "Support"
// rather than identities, "Leave" not landing on the operator sign-in).
// Any console error or page error fails the run.
// Screenshots go to target/screenshots/; with UPDATE_SCREENSHOT=1 one is copied to docs/chat.png
// (the README's picture), so an ordinary test run never changes a tracked file.

import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import {
  ROOT,
  SHOTS,
  WAIT,
  assert,
  contrastProblems,
  expectConn,
  expectTail,
  launch,
  recordFrames,
  restClient,
  runner,
  send,
  signIn,
  texts,
  waitForText,
  watchConsole,
} from './lib.mjs';

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

const TWILIO_SID = `AC${'0'.repeat(32)}`;
const TWILIO_TOKEN = 'twilio-auth-token-e2e-0123456789';
const OUR_NUMBER = '+15005550006';
const SAM = '+14155550100';
const SMS_REPLY = 'Sorry Sam, we are resending it today.';

/** Posts a webhook the way Twilio does: form-encoded, signed with X-Twilio-Signature. */
async function twilioHook(accountId, fields) {
  const url = `${base}/v1.0/hooks/twilio/${accountId}`;
  const params = Object.entries(fields);
  const mac = crypto.createHmac('sha1', TWILIO_TOKEN).update(url);
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
  // Right-to-left text and links (a long Hebrew name squeezes the list row's time).
  const INTL_NAME = 'עזרה בהזמנה של לקוח חשוב מאוד מאוד מאוד';
  const ARABIC = 'مرحبا، أين طلبي؟ رقم الطلب 1042';
  const LINK = 'https://example.com/track?id=42';
  const intl = await rest('POST', '/conversations', { name: INTL_NAME });
  await rest('POST', `/conversations/${intl.id}/messages`, { text: `Track it at ${LINK}. Thanks` });
  await rest('POST', `/conversations/${intl.id}/messages`, { text: 'Not a link: javascript:alert(1) ftp://files.example/x' });
  await rest('POST', `/conversations/${intl.id}/messages`, { text: ARABIC });

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
    run.step = 'operator signs in';
    await signIn(op, base, apiKey, 'Olivia');
    await op.keyboard.press('Tab');
    const firstTab = await op.evaluate(() => document.activeElement.className);
    assert(firstTab === 'skip', `after sign-in the first Tab reaches "Skip to messages", got "${firstTab}"`);
    const billing = op.locator('#conv-list button', { hasText: 'Billing question' });
    await billing.waitFor({ timeout: WAIT });
    await op.waitForFunction(() => {
      const b = [...document.querySelectorAll('#conv-list button')].find((x) => x.textContent.includes('Billing question'));
      return b && b.querySelector('.unread') && b.querySelector('.unread').textContent === '2';
    }, null, { timeout: WAIT });
    log('operator: list shows 2 unread in "Billing question"');
    // The list button's accessible name (computed by the browser) carries what it shows.
    await op
      .getByRole('button', { name: /^Billing question\s*,\s*Chat\s*,\s*\S.*,\s*API: Invoice 88-311 attached\.\s*,\s*2 unread$/ })
      .waitFor({ timeout: WAIT });
    const wrapped = await op.evaluate(() =>
      [...document.querySelectorAll('#conv-list time')].filter((t) => {
        const range = document.createRange();
        range.selectNodeContents(t);
        return range.getClientRects().length !== 1;
      }).map((t) => t.textContent),
    );
    assert(!wrapped.length, `list times on one line, wrapped: ${wrapped}`);
    log('operator: list buttons named with preview, channel and time; times on one line');

    run.step = 'right-to-left text and links';
    const intlDirs = await op.evaluate((id) => {
      const b = document.querySelector(`#conv-list button[data-id="${id}"]`);
      return [b.querySelector('.conv-name'), b.querySelector('.preview')].map((e) => getComputedStyle(e).direction);
    }, intl.id);
    assert(intlDirs.join() === 'rtl,rtl', `Hebrew name and Arabic preview laid out rtl in the list, got ${intlDirs}`);
    await op.click(`#conv-list button[data-id="${intl.id}"]`);
    await waitForText(op, ARABIC, 'operator');
    const rtl = await op.evaluate((t) => {
      const dir = (e) => getComputedStyle(e).direction;
      const msgs = [...document.querySelectorAll('#messages .text')];
      const ar = msgs.find((e) => e.textContent === t);
      const en = msgs.find((e) => e.textContent.startsWith('Track it'));
      return { ar: dir(ar), en: dir(en), title: dir(document.querySelector('#room-title')) };
    }, ARABIC);
    assert(rtl.ar === 'rtl' && rtl.title === 'rtl', `Arabic message and Hebrew title rtl: ${JSON.stringify(rtl)}`);
    assert(rtl.en === 'ltr', `an English message stays ltr: ${JSON.stringify(rtl)}`);
    const links = await op.evaluate(() =>
      [...document.querySelectorAll('#messages .text')].map((p) => ({
        text: p.textContent,
        links: [...p.querySelectorAll('a')].map((a) => ({ href: a.getAttribute('href'), rel: a.rel, target: a.target, text: a.textContent })),
      })),
    );
    const tracked = links.find((m) => m.text === `Track it at ${LINK}. Thanks`);
    assert(
      tracked && tracked.links.length === 1 && tracked.links[0].href === LINK && tracked.links[0].text === LINK,
      `the URL is a link without the full stop after it: ${JSON.stringify(tracked)}`,
    );
    assert(tracked.links[0].rel === 'noopener noreferrer' && tracked.links[0].target === '_blank', `link rel/target: ${JSON.stringify(tracked.links[0])}`);
    const notLinks = links.find((m) => m.text.startsWith('Not a link'));
    assert(notLinks && notLinks.links.length === 0, `javascript: and ftp: stay text: ${JSON.stringify(notLinks)}`);
    const days = await op.$$eval('#messages > li', (lis) => lis.map((li) => li.className));
    assert(days[0] === 'day' && days.filter((c) => c === 'day').length === 1, `one day separator before today's messages: ${days}`);
    assert((await op.textContent('#messages > li.day')) === 'Today', 'the separator says Today');
    log('operator: Arabic/Hebrew rtl, English ltr; the URL is a safe link; a day separator');

    run.step = 'operator opens the conversation; infinite scroll';
    await op.click(`#conv-list button[data-id="${conv.id}"]`);
    await waitForText(op, 'Your parcel label:', 'operator');
    await op.locator('#messages img').first().waitFor({ timeout: WAIT });
    const first = (await texts(op)).length;
    assert(first < 41, `operator loaded only the newest page first (got ${first})`);
    await op.evaluate(() => {
      document.querySelector('#scroller').scrollTop = 0;
    });
    await op.waitForFunction(() => document.querySelectorAll('#messages .text').length === 41, null, { timeout: WAIT });
    const afterScroll = await texts(op);
    assert(afterScroll[0] === 'Earlier message 1', `oldest message first after scrolling back, got ${afterScroll[0]}`);
    log(`operator: history ${first} -> ${afterScroll.length} messages by scrolling up`);

    run.step = 'end user opens the link';
    // Share links carry the token in the fragment, which never reaches the server; the page
    // takes it out of the address bar at once.
    // The operator's invite link carries the room's name (an end user's token cannot read it).
    await user.goto(`${base}/#token=${encodeURIComponent(token)}&name=${encodeURIComponent(conv.name)}`);
    await expectConn(user, 'connected', 'end user');
    assert(!user.url().includes('token') && !user.url().includes('name='), `the token left the address bar, got ${user.url()}`);
    await waitForText(user, 'Your parcel label:', 'end user');
    const userTitle = await user.textContent('#room-title');
    assert(userTitle === conv.name, `the end user sees the room's name, got "${userTitle}"`);
    assert(!(await user.isVisible('#owner')), 'the end user is not shown the assignment');
    // At 390×844 the room opens at its newest message (with its image loaded).
    await user.waitForFunction(() => {
      const img = document.querySelector('#messages img');
      return img && img.complete && img.naturalWidth > 0;
    }, null, { timeout: WAIT });
    const phone = await user.evaluate(() => {
      const sc = document.querySelector('#scroller');
      return { top: sc.scrollTop, height: sc.scrollHeight, client: sc.clientHeight };
    });
    assert(phone.height - phone.top - phone.client < 40, `phone opens at the newest message: ${JSON.stringify(phone)}`);
    // 41 messages are more than the server replays (ws.max_recovery = 30 here): the page reads
    // the newest page over REST with the client token and pages back as the user scrolls up.
    const userFirst = (await texts(user)).length;
    assert(userFirst < 41, `end user got the newest page first (got ${userFirst})`);
    await user.evaluate(() => {
      document.querySelector('#scroller').scrollTop = 0;
    });
    await user.waitForFunction(() => document.querySelectorAll('#messages .text').length === 41, null, { timeout: WAIT });
    assert((await texts(user))[0] === 'Earlier message 1', 'end user scrolled back to the first message');
    log(`end user: history ${userFirst} -> 41 messages by scrolling up (REST with the client token)`);
    await op.waitForFunction(() => document.querySelector('#online').textContent.includes('alice'), null, { timeout: WAIT });
    log('end user connected; operator sees alice online');

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

    run.step = 'operator adds a participant';
    await op.click('#people-toggle');
    await op.selectOption('#add-type', 'webchat');
    await op.fill('#add-target', 'bob');
    await op.fill('#add-name', 'Bob');
    await op.click('#add-person button[type=submit]');
    await op.waitForFunction(() => document.querySelector('#add-result').textContent.startsWith('Added Bob'), null, {
      timeout: WAIT,
    });
    await op.locator('#people-list li', { hasText: 'Bob (bob)' }).waitFor({ timeout: WAIT });
    const parts = (await rest('GET', `/conversations/${conv.id}/participants`)).result.map((p) => p.address.target).sort();
    assert(JSON.stringify(parts) === JSON.stringify(['Olivia', 'alice', 'bob']), `participants ${parts}`);
    await op.focus('#add-target');
    await op.keyboard.press('Escape');
    assert(!(await op.isVisible('#panel')), 'Escape closes the contact panel');
    assert(await op.evaluate(() => document.activeElement.id === 'people-toggle'), 'focus returns to the panel toggle');
    log('operator added bob from the page');

    run.step = 'operator assigns the conversation to an agent and back';
    // The picker lists the tenant's agents (GET /v1.0/agents) with their presence.
    await op.locator('#assign-agent option[value="agent-ann"]', { hasText: 'Ann — away' }).waitFor({ state: 'attached', timeout: WAIT });
    await op.selectOption('#assign-agent', 'agent-ann');
    await op.click('#assign-form button[type=submit]');
    await op.waitForFunction(() => document.querySelector('#owner').textContent === 'Assigned to Ann', null, {
      timeout: WAIT,
    });
    const owned = await rest('GET', `/conversations/${conv.id}`);
    assert(owned.owner_type === 'agent' && owned.owner_id === 'agent-ann', `owner ${owned.owner_id}`);
    await rest('POST', `/conversations/${conv.id}/unassign`, {});
    await op.waitForFunction(() => document.querySelector('#owner').textContent === 'Unassigned', null, { timeout: WAIT });
    assert(!(await op.isVisible('#unassign')), 'no Unassign button while unassigned');
    log('operator assigned from the picker; the unassign done over REST reached the page live');
    await op.selectOption('#assign-agent', 'agent-ann');
    await op.click(`#conv-list button[data-id="${other.id}"]`);
    assert((await op.inputValue('#assign-agent')) === '', 'the picker shows no agent in another (unassigned) conversation');
    await op.click(`#conv-list button[data-id="${conv.id}"]`);

    run.step = 'operator resolves the conversation; a reopen over REST reaches the page live';
    const statusIs = (text) =>
      op.waitForFunction((t) => document.querySelector('#status').textContent === t, text, { timeout: WAIT });
    await statusIs('Open');
    await op.click('#resolve');
    await statusIs('Resolved');
    assert((await rest('GET', `/conversations/${conv.id}`)).status === 'resolved', 'resolved over REST');
    assert(await op.isVisible('#reopen'), 'a Reopen button once resolved');
    await rest('PUT', `/conversations/${conv.id}`, { status: 'open' });
    await statusIs('Open');
    assert(await op.isVisible('#resolve'), 'a Resolve button once open again');
    log('operator resolved from the page; the reopen done over REST reached the page live');

    if (twilioStub) {
      run.step = 'inbound SMS from a new number appears live';
      const acc = await rest('POST', '/conversation_accounts', {
        type: 'tel',
        provider: 'twilio',
        name: 'Support line',
        address: OUR_NUMBER,
        credentials: { account_sid: TWILIO_SID, auth_token: TWILIO_TOKEN },
        api_base_url: twilioStub,
      });
      assert(opFrames.some((f) => f.dir === 'in' && f.type === 'watching'), 'the operator page watches the conversation list');
      const listedBefore = listRequests;
      await twilioHook(acc.id, {
        MessageSid: `SM${'1'.repeat(32)}`,
        AccountSid: TWILIO_SID,
        From: SAM,
        To: OUR_NUMBER,
        Body: 'Hi, this is Sam. My parcel never arrived.',
        NumMedia: '0',
      });
      const smsRoom = op.locator('#conv-list button', { hasText: SAM });
      // Live: well within the page's 60 s fallback poll, and without asking REST for the list.
      await smsRoom.waitFor({ timeout: WAIT });
      const smsId = await smsRoom.getAttribute('data-id');
      const pushed = opFrames.find((f) => f.dir === 'in' && f.type === 'conversation' && f.event === 'created' && f.conversation_id === smsId);
      assert(pushed, 'the new room arrived as a `conversation` frame');
      assert(listRequests === listedBefore, `the page polled the list ${listRequests - listedBefore} times`);
      await op.waitForFunction(
        (num) => {
          const b = [...document.querySelectorAll('#conv-list button')].find((x) => x.textContent.includes(num));
          return b && b.querySelector('.badge.ch-sms') && b.querySelector('.unread') && b.textContent.includes('My parcel never arrived');
        },
        SAM,
        { timeout: WAIT },
      );
      assert(listRequests === listedBefore, 'no list polling while the SMS room filled in');
      log('operator list shows the new SMS room live (pushed, not polled) with its badge, preview and unread count');
      await smsRoom.click();
      await waitForText(op, 'Hi, this is Sam. My parcel never arrived.', 'operator');
      await op.locator('#messages .msg.theirs .via', { hasText: 'via SMS' }).first().waitFor({ timeout: WAIT });

      run.step = 'operator replies over SMS; delivery status';
      await send(op, SMS_REPLY);
      const myStatus = () =>
        op.evaluate((t) => {
          const li = [...document.querySelectorAll('#messages .msg.mine')].find((x) => x.querySelector('.text').textContent === t);
          return li ? li.querySelector('.status').textContent : null;
        }, SMS_REPLY);
      await op.waitForFunction(
        (t) => {
          const li = [...document.querySelectorAll('#messages .msg.mine')].find((x) => x.querySelector('.text').textContent === t);
          return li && li.querySelector('.status').textContent === 'sent';
        },
        SMS_REPLY,
        { timeout: WAIT },
      );
      const smsConv = await op.evaluate(() => window.switchboard.store.activeId);
      let sid = null;
      for (let i = 0; i < 100 && !sid; i++) {
        const page = await rest('GET', `/conversations/${smsConv}/messages`);
        const m = page.result.find((x) => x.text === SMS_REPLY);
        sid = m && m.deliveries && m.deliveries[0] && m.deliveries[0].provider_message_id;
        if (!sid) await new Promise((r) => setTimeout(r, 100));
      }
      assert(sid, 'the reply got a provider message id from the stub');
      await twilioHook(acc.id, { MessageSid: sid, MessageStatus: 'delivered', SmsStatus: 'delivered', AccountSid: TWILIO_SID, From: OUR_NUMBER, To: SAM });
      await op
        .waitForFunction(
          (t) => {
            const li = [...document.querySelectorAll('#messages .msg.mine')].find((x) => x.querySelector('.text').textContent === t);
            return li && li.querySelector('.status').textContent === 'delivered';
          },
          SMS_REPLY,
          { timeout: WAIT },
        )
        .catch(async () => {
          throw new Error(`reply status is "${await myStatus()}", expected "delivered"`);
        });
      log('operator reply went out over SMS: sent, then delivered');

      run.step = 'operator adds a phone number to the chat room';
      await op.click(`#conv-list button[data-id="${conv.id}"]`);
      await op.click('#people-toggle');
      await op.selectOption('#add-type', 'tel');
      await op.locator('#add-account option', { hasText: OUR_NUMBER }).waitFor({ state: 'attached', timeout: WAIT });
      await op.fill('#add-target', '+14155550134');
      await op.fill('#add-name', 'Alice (mobile)');
      await op.click('#add-person button[type=submit]');
      await op.waitForFunction(() => document.querySelector('#add-result').textContent.startsWith('Added Alice (mobile)'), null, {
        timeout: WAIT,
      });
      await op.locator('#room-badges .badge.ch-sms').waitFor({ timeout: WAIT });
      await op.click('#people-toggle');
      log('operator added +14155550134 over the SMS account; the room shows the SMS badge');
    }

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
    await op.waitForFunction(() => {
      const img = document.querySelector('#messages img');
      return img && img.complete && img.naturalWidth > 0;
    }, null, { timeout: WAIT });
    const opPhone = await op.evaluate(() => {
      const sc = document.querySelector('#scroller');
      return { top: sc.scrollTop, height: sc.scrollHeight, client: sc.clientHeight };
    });
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

main().then(
  () => {
    clearTimeout(deadline);
    log('e2e: all scenarios passed');
  },
  (e) => {
    clearTimeout(deadline);
    console.error(`e2e FAILED at step "${run.step}": ${e.stack || e}`);
    process.exit(1);
  },
);
