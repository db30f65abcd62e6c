// The e2e run's first part (see e2e.mjs): what the operator's list and pane show, and the end
// user opening the room's link. The list: unread counts, buttons named with name, channel,
// time, preview and unread count, times on one line, the skip link as the first Tab stop.
// Arabic and Hebrew laid out right to left (English stays left to right), URLs as safe links
// (javascript: and ftp: stay text), one day separator. History: the operator and the end user
// (over REST with its client token, beyond the server's replay window) page back to the first
// message by scrolling up; a phone opens a room at its newest message; the token leaves the
// address bar and the end user sees the room's name, not its assignment.

import { WAIT, assert, expectConn, scrollAfterImage, signIn, texts, waitForText } from '../lib.mjs';

// Right-to-left text and links (a long Hebrew name squeezes the list row's time).
const INTL_NAME = 'עזרה בהזמנה של לקוח חשוב מאוד מאוד מאוד';
const ARABIC = 'مرحبا، أين طلبي؟ رقم الطلب 1042';
const LINK = 'https://example.com/track?id=42';

/** The room with right-to-left text and links the checks below read. */
export async function seedIntl(rest) {
  const intl = await rest('POST', '/conversations', { name: INTL_NAME });
  await rest('POST', `/conversations/${intl.id}/messages`, { text: `Track it at ${LINK}. Thanks` });
  await rest('POST', `/conversations/${intl.id}/messages`, { text: 'Not a link: javascript:alert(1) ftp://files.example/x' });
  await rest('POST', `/conversations/${intl.id}/messages`, { text: ARABIC });
  return intl;
}

/** The operator signs in and reads the list and two rooms; the end user opens its link. */
export async function reading(t) {
  const { base, apiKey, op, user, run, log, conv, intl, token } = t;

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
  const phone = await scrollAfterImage(user);
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

}
