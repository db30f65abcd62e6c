// The agent inbox (issue 19) in Debian's headless Chromium, driven by playwright-core.
//
//   node tests/browser/inbox.mjs <base url> <api key> <twilio stub url>
//
// An admin signs in with the API key, an agent ("Ann") sets her password from an invite link and
// signs in with email and password in a second, fresh browser too. Covered: Mine, Unassigned and
// All with counts, the status filter and search; assigning from the agent picker (presence
// shown); a private note in an SMS room (the Rust side checks it never reached the SMS stub)
// and a canned response inserted with `/` (which did); the SMS room keeps its SMS badge only;
// the contact panel; an attachment each way (and a refused type explained); the tab title's
// unread badge on a new message; unread counts equal in two fresh browser contexts of one agent
// (read state kept by the server); Arabic laid out right to left; a phone-size room opening at
// its newest message; list keyboard navigation and Escape; signing out (the refresh token dies);
// and axe-core with no serious or critical violation on every view (sign-in, invite, list, room,
// contact panel, phone, dark theme). Screenshots go to target/screenshots/ (inbox-*.png); with
// UPDATE_SCREENSHOT=1 they are copied to docs/. An agent assigning from the picker and desktop
// notifications are inbox_assign.mjs.

import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { ROOT, SHOTS, WAIT, anonClient, assert, axeClean, expectConn, expectCounts, expectList, launch, listed, restClient, runner, signIn, signInPassword, twilioHook, waitForText, watchConsole } from './lib.mjs';

const [base, apiKey, twilioStub] = process.argv.slice(2);
if (!base || !apiKey || !twilioStub) {
  console.error('usage: node inbox.mjs <base url> <api key> <twilio stub url>');
  process.exit(2);
}
const run = runner('inbox');
const { log } = run;
const errors = [];
const rest = restClient(base, apiKey);
const anon = anonClient(base);
const deadline = run.guard(170_000);

const TWILIO_SID = `AC${'0'.repeat(32)}`;
const TWILIO_TOKEN = 'twilio-auth-token-inbox-0123456789';
const OUR_NUMBER = '+15005550006';
const DAN = '+14155550111';
const NOTE = 'Internal: customer is VIP, refund without asking.';
const REFUND = 'We have refunded your order; it shows on your card in 3 to 5 days.';
const PASSWORD = 'correct horse battery staple';
const ARABIC = 'هل يمكنني استرداد المبلغ من فضلك؟';
const PNG = png(160, 96);

/** A `w`×`h` PNG (a blue label with a white band), made here so the test needs no file. */
function png(w, h) {
  const crcTable = Array.from({ length: 256 }, (_, n) => {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    return c >>> 0;
  });
  const crc = (buf) => {
    let c = 0xffffffff;
    for (const b of buf) c = crcTable[(c ^ b) & 0xff] ^ (c >>> 8);
    return (c ^ 0xffffffff) >>> 0;
  };
  const chunk = (type, data) => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const td = Buffer.concat([Buffer.from(type), data]);
    const c = Buffer.alloc(4);
    c.writeUInt32BE(crc(td));
    return Buffer.concat([len, td, c]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0);
  ihdr.writeUInt32BE(h, 4);
  ihdr.set([8, 2, 0, 0, 0], 8); // 8-bit RGB
  const rows = [];
  for (let y = 0; y < h; y++) {
    const row = Buffer.alloc(1 + w * 3);
    for (let x = 0; x < w; x++) {
      const band = y > h / 3 && y < (2 * h) / 3 && x > 12 && x < w - 12;
      row.set(band ? [255, 255, 255] : [37, 99, 235], 1 + x * 3);
    }
    rows.push(row);
  }
  const sig = Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]);
  return Buffer.concat([sig, chunk('IHDR', ihdr), chunk('IDAT', zlib.deflateSync(Buffer.concat(rows))), chunk('IEND', Buffer.alloc(0))]);
}

async function main() {
  fs.mkdirSync(SHOTS, { recursive: true });
  run.step = 'seed over REST';
  const acc = await rest('POST', '/conversation_accounts', {
    type: 'tel', provider: 'twilio', name: 'Support line', address: OUR_NUMBER,
    credentials: { account_sid: TWILIO_SID, auth_token: TWILIO_TOKEN }, api_base_url: twilioStub,
  });
  const ann = await rest('POST', '/agents', { email: 'ann@example.com', name: 'Ann Agent', role: 'agent', identity: 'ann' });
  await rest('POST', '/agents', { email: 'ben@example.com', name: 'Ben', role: 'agent', identity: 'ben' });
  await rest('POST', '/canned_responses', { short_code: 'refund', content: REFUND });
  await rest('POST', '/canned_responses', { short_code: 'hello', content: 'Hello! How can I help?' });
  const mine = await rest('POST', '/conversations', { name: 'Refund for order 77' });
  for (let i = 1; i <= 40; i++) await rest('POST', `/conversations/${mine.id}/messages`, { text: `Order detail ${i}` });
  await rest('POST', `/conversations/${mine.id}/messages`, { text: ARABIC });
  await rest('PUT', `/conversations/${mine.id}`, { owner_type: 'agent', owner_id: 'ann' });
  const open = await rest('POST', '/conversations', { name: 'Shipping question' });
  await rest('POST', `/conversations/${open.id}/messages`, { text: 'When does it ship?' });
  await rest('POST', `/conversations/${open.id}/messages`, { text: 'Any news?' });
  const bens = await rest('POST', '/conversations', { name: 'Ben customer' });
  await rest('POST', `/conversations/${bens.id}/messages`, { text: 'For Ben only' });
  await rest('PUT', `/conversations/${bens.id}`, { owner_type: 'agent', owner_id: 'ben' });
  const done = await rest('POST', '/conversations', { name: 'Old resolved case' });
  await rest('POST', `/conversations/${done.id}/messages`, { text: 'Thanks, all good' });
  await rest('PUT', `/conversations/${done.id}`, { status: 'resolved' });
  await twilioHook(base, TWILIO_TOKEN, acc.id, { MessageSid: `SM${'2'.repeat(32)}`, AccountSid: TWILIO_SID, From: DAN, To: OUR_NUMBER, Body: 'Hi, I need a refund please', NumMedia: '0' });
  const sms = (await rest('GET', `/conversations?q=${encodeURIComponent(DAN)}`)).result[0];
  assert(sms, 'the inbound SMS made a conversation');

  const browser = await launch();
  const adminCtx = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const admin = await adminCtx.newPage();
  const excused = (t) => t.includes('415'); // the refused upload below, on purpose
  watchConsole(admin, 'admin', errors, excused);
  let ann1Ctx = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const ann1 = await ann1Ctx.newPage();
  watchConsole(ann1, 'ann (first browser)', errors, excused);
  const ann2Ctx = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const ann2 = await ann2Ctx.newPage();
  watchConsole(ann2, 'ann (second browser)', errors, excused);
  try {
    run.step = 'sign-in page';
    await admin.goto(base);
    await admin.locator('#login-email').waitFor({ timeout: WAIT });
    await axeClean(admin, 'the sign-in page');
    await signIn(admin, base, apiKey, 'Olivia');
    log('admin signed in with the API key; sign-in page axe-clean');

    run.step = 'tabs, status filter, search (admin)';
    const everything = ['Refund for order 77', 'Shipping question', 'Ben customer', 'Old resolved case', sms.name || DAN];
    await expectList(admin, everything, 'admin');
    await expectCounts(admin, { mine: 0, unassigned: 3, all: 5 }, 'admin');
    await admin.click('#tab-unassigned');
    await expectList(admin, ['Shipping question', 'Old resolved case', sms.name || DAN], 'admin (Unassigned)');
    await admin.click('#tab-all');
    await admin.selectOption('#status-filter', 'resolved');
    await expectList(admin, ['Old resolved case'], 'admin (resolved)');
    await expectCounts(admin, { mine: 0, unassigned: 1, all: 1 }, 'admin (resolved)');
    await admin.selectOption('#status-filter', '');
    await admin.fill('#search', 'shipping');
    await expectList(admin, ['Shipping question'], 'admin (search "shipping")');
    await admin.fill('#search', '+1415555011');
    await expectList(admin, [sms.name || DAN], 'admin (search by number)');
    await admin.fill('#search', '');
    await expectList(admin, everything, 'admin');
    await axeClean(admin, 'the list');
    // Keyboard: arrows move through the list, Enter opens.
    await admin.focus('#conv-list button.conv');
    await admin.keyboard.press('ArrowDown');
    const second = await admin.evaluate(() => document.activeElement.dataset.id);
    await admin.keyboard.press('Enter');
    await admin.waitForFunction((id) => window.switchboard.store.activeId === id, second, { timeout: WAIT });
    log('admin: Mine/Unassigned/All with counts, status filter, search, arrows + Enter');

    run.step = 'an invited agent sets a password';
    const invite = new URL(ann.invite_url).hash;
    assert(invite.startsWith('#invite='), `invite_url carries the token in the fragment: ${ann.invite_url}`);
    await ann1.goto(`${base}/${invite}`);
    await ann1.locator('#invite-password').waitFor({ timeout: WAIT });
    assert(!ann1.url().includes('invite='), 'the invite token left the address bar');
    await axeClean(ann1, 'the invite page');
    await ann1.fill('#invite-password', PASSWORD);
    await ann1.fill('#invite-password2', PASSWORD);
    await ann1.press('#invite-password2', 'Enter');
    await expectConn(ann1, 'connected', 'ann');
    assert((await ann1.textContent('#me')) === 'Ann Agent (agent)', `ann is shown as an agent: ${await ann1.textContent('#me')}`);
    await expectList(ann1, ['Refund for order 77', 'Shipping question', 'Old resolved case', sms.name || DAN], 'ann');
    await expectCounts(ann1, { mine: 1, unassigned: 3, all: 4 }, 'ann');
    await ann1.click('#tab-mine');
    await expectList(ann1, ['Refund for order 77'], 'ann (Mine)');
    log('ann set her password from the invite link; sees her own and the unassigned rooms');

    run.step = 'ann reads her room; Arabic right to left';
    await ann1.click(`#conv-list button[data-id="${mine.id}"]`);
    await waitForText(ann1, ARABIC, 'ann');
    const dir = await ann1.evaluate((t) => getComputedStyle([...document.querySelectorAll('#messages .text')].find((e) => e.textContent === t)).direction, ARABIC);
    assert(dir === 'rtl', `Arabic laid out right to left, got ${dir}`);
    await axeClean(ann1, 'a room');
    // The server keeps her read marker (sent by the page over the WebSocket).
    const session = await anon('POST', '/sessions', { email: 'ann@example.com', password: PASSWORD });
    assert(session.status === 201 && session.body.token, `a REST sign-in works too: ${session.status}`);
    const annRest = restClient(base, session.body.token);
    const last = (await rest('GET', `/conversations/${mine.id}`)).last_seq;
    for (let i = 0; i < 100; i++) {
      const c = await annRest('GET', `/conversations/${mine.id}`);
      if (c.last_read_seq >= last) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    assert((await annRest('GET', `/conversations/${mine.id}`)).unread_count === 0, 'the server counts her room as read');
    log('ann: Arabic rtl; her read marker reached the server');

    run.step = 'a second, fresh browser of the same agent shows the same unread counts';
    await signInPassword(ann2, base, 'ann@example.com', PASSWORD, 'ann (second browser)');
    await ann1.click('#tab-all');
    await expectList(ann1, ['Refund for order 77', 'Shipping question', 'Old resolved case', sms.name || DAN], 'ann (All)');
    await expectList(ann2, ['Refund for order 77', 'Shipping question', 'Old resolved case', sms.name || DAN], 'ann (second browser)');
    await ann2.waitForFunction((id) => {
      const b = document.querySelector(`#conv-list button[data-id="${id}"]`);
      return b && !b.querySelector('.unread');
    }, mine.id, { timeout: WAIT });
    const byId = (l) => JSON.stringify(l.map((r) => [r.id, r.unread]).sort());
    await ann2.waitForFunction(() => document.querySelectorAll('#conv-list .unread').length >= 2, null, { timeout: WAIT });
    const [u1, u2] = [await listed(ann1), await listed(ann2)];
    assert(byId(u1) === byId(u2), `unread counts differ between two browsers: ${byId(u1)} vs ${byId(u2)}`);
    assert(u2.find((r) => r.id === open.id).unread === '2', `"Shipping question" has 2 unread: ${byId(u2)}`);
    log(`unread counts equal in both browsers: ${byId(u2)}`);
    await ann1Ctx.close();
    ann1Ctx = null;

    run.step = 'a new message puts a badge in the title';
    const titleBefore = await ann2.title();
    const n = Number((/^\((\d+)\) Switchboard$/.exec(titleBefore) || [0, 0])[1]);
    assert(n > 0, `the title counts unread messages: "${titleBefore}"`);
    await rest('POST', `/conversations/${mine.id}/messages`, { text: 'Are you still there?' });
    await ann2.waitForFunction((want) => document.title === want, `(${n + 1}) Switchboard`, { timeout: WAIT }).catch(async () => {
      throw new Error(`title "${await ann2.title()}", expected "(${n + 1}) Switchboard"`);
    });
    log(`title: "${titleBefore}" -> "(${n + 1}) Switchboard"`);

    run.step = 'assigning from the picker (presence shown)';
    await admin.click(`#conv-list button[data-id="${open.id}"]`);
    await admin.evaluate(() => window.switchboard.chat.directory.loadAgents().then(() => true));
    await admin.locator('#assign-agent option[value="ann"]', { hasText: 'Ann Agent — online' }).waitFor({ state: 'attached', timeout: WAIT });
    assert(await admin.locator('#assign-agent option[value="ben"]', { hasText: 'Ben — away' }).count(), 'Ben shows as away');
    await admin.selectOption('#assign-agent', 'ann');
    await admin.click('#assign-form button[type=submit]');
    await admin.waitForFunction(() => document.querySelector('#owner').textContent === 'Assigned to Ann Agent', null, { timeout: WAIT });
    assert((await rest('GET', `/conversations/${open.id}`)).owner_id === 'ann', 'assigned over REST');
    await expectCounts(ann2, { mine: 2, unassigned: 2, all: 4 }, 'ann after the assignment');
    log('admin assigned "Shipping question" to Ann from the picker; her Mine count went to 2 live');

    run.step = 'a private note and a canned response in the SMS room';
    await admin.click(`#conv-list button[data-id="${sms.id}"]`);
    await waitForText(admin, 'Hi, I need a refund please', 'admin');
    await admin.check('#mode-note');
    await admin.fill('#composer-text', NOTE);
    await admin.press('#composer-text', 'Enter');
    await admin.locator('#messages .msg.note .text', { hasText: NOTE }).waitFor({ timeout: WAIT });
    // Read the colour in one step in the page: the note's element is re-rendered when its ack
    // comes, and a handle taken before that would point at a detached node (no computed style).
    const noteBg = () => admin.evaluate(() => {
      const b = document.querySelector('#messages .msg.note .bubble');
      return b ? getComputedStyle(b).backgroundColor : 'no note';
    });
    await admin.waitForFunction(() => {
      const b = document.querySelector('#messages .msg.note .bubble');
      return b && getComputedStyle(b).backgroundColor === 'rgb(254, 243, 199)';
    }, null, { timeout: WAIT }).catch(async () => {
      throw new Error(`a note is yellow: ${await noteBg()}`);
    });
    await admin.check('#compose-mode input[value=public]');
    await admin.locator('#composer-text').pressSequentially('/ref', { delay: 10 });
    await admin.locator('#canned [role=option]', { hasText: '/refund' }).waitFor({ timeout: WAIT });
    assert((await admin.locator('#canned [role=option]').count()) === 1, 'the list is filtered by the typed code');
    await admin.press('#composer-text', 'Enter');
    assert((await admin.inputValue('#composer-text')) === REFUND, `Enter inserts the canned text: ${await admin.inputValue('#composer-text')}`);
    await admin.press('#composer-text', 'Enter');
    await admin.waitForFunction((t) => {
      const li = [...document.querySelectorAll('#messages .msg.mine')].find((x) => x.querySelector('.text') && x.querySelector('.text').textContent === t);
      return li && ['sent', 'delivered'].includes(li.querySelector('.status').textContent);
    }, REFUND, { timeout: WAIT });
    const badges = await admin.textContent('#room-badges');
    assert(badges === 'SMS', `replying keeps the SMS room an SMS room (no CHAT badge): "${badges}"`);
    log('admin: a yellow private note, then /refund inserted and sent over SMS; badge stays SMS');

    run.step = 'the contact panel';
    await admin.click('#people-toggle');
    await admin.locator('#contact .addresses li', { hasText: DAN }).waitFor({ timeout: WAIT });
    await axeClean(admin, 'the contact panel');
    await admin.screenshot({ path: path.join(SHOTS, 'inbox-desktop-light.png') });
    await admin.emulateMedia({ colorScheme: 'dark' });
    await axeClean(admin, 'the contact panel, dark');
    await admin.screenshot({ path: path.join(SHOTS, 'inbox-desktop-dark.png') });
    await admin.emulateMedia({ colorScheme: 'light' });
    await admin.keyboard.press('Escape');
    assert(!(await admin.isVisible('#panel')), 'Escape closes the contact panel');
    log('contact panel: the contact with its SMS address; axe-clean in both themes');

    run.step = 'attachments both ways';
    await admin.click(`#conv-list button[data-id="${mine.id}"]`);
    await admin.setInputFiles('#attach', { name: 'label.png', mimeType: 'image/png', buffer: PNG });
    await admin.locator('#files .chip.done').waitFor({ timeout: WAIT });
    await admin.fill('#composer-text', 'Your label');
    await admin.press('#composer-text', 'Enter');
    await admin.locator('#messages .msg.mine img[alt="Image: label.png"]').waitFor({ timeout: WAIT });
    await ann2.click(`#conv-list button[data-id="${mine.id}"]`);
    await ann2.locator('#messages .msg.theirs img[alt="Image: label.png"]').waitFor({ timeout: WAIT });
    await ann2.setInputFiles('#attach', { name: 'page.html', mimeType: 'text/html', buffer: Buffer.from('<!doctype html><html><body>x</body></html>') });
    await ann2.locator('#files .chip.failed .error', { hasText: 'not accepted' }).waitFor({ timeout: WAIT });
    await ann2.click('#files .chip.failed button');
    await ann2.setInputFiles('#attach', { name: 'invoice.txt', mimeType: 'text/plain', buffer: Buffer.from('Invoice 77: 49.00 EUR\n') });
    await ann2.locator('#files .chip.done').waitFor({ timeout: WAIT });
    await ann2.fill('#composer-text', 'Here is the invoice');
    await ann2.press('#composer-text', 'Enter');
    await admin.locator('#messages .msg.theirs a.file', { hasText: 'invoice.txt' }).waitFor({ timeout: WAIT });
    log('an image from the admin reached Ann; her file reached the admin; an HTML file was refused with a reason');

    run.step = 'phone size';
    await ann2.setViewportSize({ width: 390, height: 844 });
    await ann2.click('#back');
    await axeClean(ann2, 'the list at phone size');
    await ann2.click(`#conv-list button[data-id="${mine.id}"]`);
    await ann2.waitForFunction(() => {
      const img = document.querySelector('#messages img');
      return img && img.complete && img.naturalWidth > 0;
    }, null, { timeout: WAIT });
    const phone = await ann2.evaluate(() => {
      const sc = document.querySelector('#scroller');
      return { top: sc.scrollTop, height: sc.scrollHeight, client: sc.clientHeight };
    });
    assert(phone.client > 0 && phone.height - phone.top - phone.client < 40, `the phone room opens at its newest message: ${JSON.stringify(phone)}`);
    await axeClean(ann2, 'a room at phone size');
    await ann2.locator('#composer-text').blur();
    await ann2.screenshot({ path: path.join(SHOTS, 'inbox-phone-light.png') });
    await ann2.emulateMedia({ colorScheme: 'dark' });
    await axeClean(ann2, 'a room at phone size, dark');
    await ann2.screenshot({ path: path.join(SHOTS, 'inbox-phone-dark.png') });
    log(`phone: opened at the newest message (scrollTop ${phone.top} of ${phone.height}); axe-clean`);

    run.step = 'signing out';
    const refresh = await ann2.evaluate(() => JSON.parse(localStorage.getItem('switchboard:session')).refresh_token);
    await ann2.click('#signout');
    await ann2.locator('#login-email').waitFor({ timeout: WAIT });
    const after = await anon('POST', '/sessions/refresh', { refresh_token: refresh });
    assert(after.status === 401, `the refresh token died with the sign-out: ${after.status}`);
    log('ann signed out; her refresh token is refused');

    if (process.env.UPDATE_SCREENSHOT === '1') {
      for (const f of ['inbox-desktop-light.png', 'inbox-desktop-dark.png', 'inbox-phone-light.png', 'inbox-phone-dark.png']) {
        fs.copyFileSync(path.join(SHOTS, f), path.join(ROOT, 'docs', f));
      }
      log('screenshots copied to docs/');
    }
    run.step = 'console errors';
    assert(!errors.length, `console errors:\n  ${errors.join('\n  ')}`);
  } catch (e) {
    for (const [page, name] of [[admin, 'admin'], [ann2, 'ann2']]) await page.screenshot({ path: path.join(SHOTS, `inbox-failure-${name}.png`) }).catch(() => {});
    if (errors.length) console.error(`console errors so far:\n  ${errors.join('\n  ')}`);
    throw e;
  } finally {
    if (ann1Ctx) await ann1Ctx.close().catch(() => {});
    await browser.close();
  }
}

main().then(
  () => {
    clearTimeout(deadline);
    log('inbox: all scenarios passed');
  },
  (e) => {
    clearTimeout(deadline);
    console.error(`inbox FAILED at step "${run.step}": ${e.stack || e}`);
    process.exit(1);
  },
);
