// The agent inbox (issue 19) in Debian's headless Chromium: an AGENT assigning from the agent
// picker, and desktop notifications. Driven by playwright-core.
//
//   node tests/browser/inbox_assign.mjs <base url> <api key>
//
// Two agents sign in with email and password, each in a fresh browser. Ann takes an unassigned
// conversation from the picker (the list shows "You"), then gives it to Ben: it leaves her list,
// Ben's Mine tab gains it (the server's counts agree) and his list, like the admin's, shows the
// new assignee. Then an admin with the `notifications` permission granted (CDP
// `Browser.grantPermissions`, through playwright) and `window.Notification` wrapped by an init
// script (records title, body and tag, then calls the real one) turns desktop notifications on:
// a customer's message in an Unassigned conversation gives exactly one notification naming the
// sender with the text; one in another agent's conversation (All only) gives none; and with the
// setting off, none. Last, deleting Ben ends his session: his open page's WebSocket closes
// with 4001 and the page goes back to the sign-in, saying so.

import { WAIT, anonClient, assert, expectCounts, expectList, launch, listed, restClient, runner, signIn, signInPassword, watchConsole } from './lib.mjs';

const [base, apiKey] = process.argv.slice(2);
if (!base || !apiKey) {
  console.error('usage: node inbox_assign.mjs <base url> <api key>');
  process.exit(2);
}
const run = runner('inbox_assign');
const { log } = run;
const errors = [];
const rest = restClient(base, apiKey);
const anon = anonClient(base);
const deadline = run.guard(120_000);
const PASSWORD = 'correct horse battery staple';

/** An agent with a password set through its invite link. */
async function agent(email, name, identity) {
  const a = await rest('POST', '/agents', { email, name, role: 'agent', identity });
  const token = new URL(a.invite_url).hash.replace('#invite=', '');
  const r = await anon('POST', '/invites/accept', { token, password: PASSWORD });
  assert(r.status === 201, `${name} accepted the invite: ${r.status}`);
  return a;
}

/** A conversation with a customer (a webchat participant) in it: `{id, customer}`. */
async function withCustomer(name, customer) {
  const c = await rest('POST', '/conversations', { name });
  const p = await rest('POST', `/conversations/${c.id}/participants`, { address: { type: 'webchat', target: customer.toLowerCase().replace(/\W+/g, '-'), name: customer } });
  return { id: c.id, customer: p.id };
}

const say = (room, text) => rest('POST', `/conversations/${room.id}/messages`, { text, author_participant_id: room.customer });

/** What the wrapped `Notification` recorded on `page`. */
const notes = (page) => page.evaluate(() => window.__notifications);

/** Waits until `page`'s store holds `text` as the newest message of a room. */
async function seen(page, text, who) {
  await page
    .waitForFunction((t) => {
      const s = window.switchboard.store;
      return [...s.rooms.values()].some((r) => ((s.lastMessage(r) || r.preview) || {}).text === t);
    }, text, { timeout: WAIT })
    .catch(() => {
      throw new Error(`${who} never received "${text}"`);
    });
}

async function main() {
  run.step = 'seed over REST';
  await agent('ann@example.com', 'Ann Agent', 'ann');
  await agent('ben@example.com', 'Ben Agent', 'ben');
  const parcel = await withCustomer('Where is my parcel', 'Carol Customer');
  await say(parcel, 'My parcel has not arrived');
  const billing = await withCustomer('Ben billing', 'Dave Customer');
  await say(billing, 'About my invoice');
  await rest('PUT', `/conversations/${billing.id}`, { owner_id: 'ben' });

  const browser = await launch();
  const contexts = [];
  // Ben's session is ended on purpose at the end: his page's refused refresh is expected then.
  let benEnded = false;
  const open = async (who, setup, expected) => {
    const ctx = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    contexts.push(ctx);
    if (setup) await setup(ctx);
    const page = await ctx.newPage();
    watchConsole(page, who, errors, expected);
    return page;
  };
  try {
    run.step = 'two agents sign in with email and password';
    const ann = await open('ann');
    const ben = await open('ben', null, (t) => benEnded && t.includes('401'));
    await signInPassword(ann, base, 'ann@example.com', PASSWORD, 'ann');
    await signInPassword(ben, base, 'ben@example.com', PASSWORD, 'ben');
    await expectList(ann, ['Where is my parcel'], 'ann');
    await expectCounts(ann, { mine: 0, unassigned: 1, all: 1 }, 'ann');
    await expectCounts(ben, { mine: 1, unassigned: 1, all: 2 }, 'ben');

    run.step = 'an agent takes an unassigned conversation from the picker';
    await ann.click(`#conv-list button[data-id="${parcel.id}"]`);
    assert(await ann.isVisible('#assign-form'), 'an agent sees the agent picker');
    await ann.evaluate(() => window.switchboard.chat.directory.loadAgents().then(() => true));
    await ann.locator('#assign-agent option[value="ben"]', { hasText: 'Ben Agent — online' }).waitFor({ state: 'attached', timeout: WAIT });
    await ann.selectOption('#assign-agent', 'ann');
    await ann.click('#assign-form button[type=submit]');
    await ann.waitForFunction(() => document.querySelector('#owner').textContent === 'Assigned to you', null, { timeout: WAIT });
    await ann.waitForFunction((id) => {
      const b = document.querySelector(`#conv-list button[data-id="${id}"] .conv-owner bdi`);
      return b && b.textContent === 'You';
    }, parcel.id, { timeout: WAIT });
    await expectCounts(ann, { mine: 1, unassigned: 0, all: 1 }, 'ann after taking it');
    await expectList(ben, ['Ben billing'], 'ben while Ann has it');
    log('ann took "Where is my parcel" from the picker; her list shows "You"');

    run.step = 'the agent gives it to a colleague';
    await ann.selectOption('#assign-agent', 'ben');
    await ann.click('#assign-form button[type=submit]');
    await expectCounts(ann, { mine: 0, unassigned: 0, all: 0 }, 'ann after giving it away');
    await expectList(ben, ['Ben billing', 'Where is my parcel'], 'ben');
    await expectCounts(ben, { mine: 2, unassigned: 0, all: 2 }, 'ben after the assignment');
    const benSees = (await listed(ben)).find((r) => r.id === parcel.id);
    assert(benSees.owner === 'You', `Ben's list shows it as his: ${JSON.stringify(benSees)}`);
    assert((await rest('GET', `/conversations/${parcel.id}`)).owner_id === 'ben', 'assigned to Ben on the server');
    log('ann gave it to Ben: her counts went to 0, his Mine to 2 (server counts), both lists show the new owner');

    run.step = 'an admin turns desktop notifications on';
    const admin = await open('admin', async (ctx) => {
      await ctx.grantPermissions(['notifications'], { origin: base });
      await ctx.addInitScript(() => {
        const Real = window.Notification;
        window.__notifications = [];
        function Recorded(title, options = {}) {
          window.__notifications.push({ title, body: options.body, tag: options.tag });
          return new Real(title, options);
        }
        Recorded.prototype = Real.prototype;
        Object.defineProperty(Recorded, 'permission', { get: () => Real.permission });
        Recorded.requestPermission = (...a) => Real.requestPermission(...a);
        window.Notification = Recorded;
      });
    });
    await signIn(admin, base, apiKey, 'Olivia');
    assert((await admin.evaluate(() => Notification.permission)) === 'granted', 'the permission is granted');
    await expectList(admin, ['Where is my parcel', 'Ben billing'], 'admin');
    const adminSees = (await listed(admin)).find((r) => r.id === parcel.id);
    assert(adminSees.owner === 'Ben Agent', `the admin's list shows the new assignee: ${JSON.stringify(adminSees)}`);
    const fresh = await withCustomer('Returns', 'Erin Customer');
    await expectList(admin, ['Where is my parcel', 'Ben billing', 'Returns'], 'admin');
    // Off (the default): nothing.
    await say(fresh, 'Off: do not tell anyone');
    await seen(admin, 'Off: do not tell anyone', 'admin');
    await admin.click('#settings summary');
    await admin.check('#set-desktop');
    await admin.waitForFunction(() => localStorage.getItem('switchboard:notify:Olivia:desktop') === '1', null, { timeout: WAIT });

    run.step = 'a message in Unassigned notifies once';
    await say(fresh, 'Can I return the blue one?');
    await admin.waitForFunction(() => window.__notifications.length >= 1, null, { timeout: WAIT });
    let got = await notes(admin);
    assert(got.length === 1, `exactly one notification: ${JSON.stringify(got)}`);
    assert(got[0].title === 'Erin Customer — Returns' && got[0].body === 'Can I return the blue one?' && got[0].tag === fresh.id, `it names the sender and the text: ${JSON.stringify(got[0])}`);
    log(`notification: ${JSON.stringify(got[0])}`);

    run.step = "another agent's conversation does not notify";
    await say(billing, 'Any news on my invoice?');
    await seen(admin, 'Any news on my invoice?', 'admin');
    await say(fresh, 'And the red one?');
    await admin.waitForFunction(() => window.__notifications.length >= 2, null, { timeout: WAIT });
    got = await notes(admin);
    assert(JSON.stringify(got.map((n) => n.body)) === JSON.stringify(['Can I return the blue one?', 'And the red one?']), `only the Unassigned messages notified: ${JSON.stringify(got)}`);

    run.step = 'with the setting off, nothing';
    await admin.uncheck('#set-desktop');
    await say(fresh, 'Hello? Anyone?');
    await seen(admin, 'Hello? Anyone?', 'admin');
    await admin.check('#set-desktop');
    await say(fresh, 'Back again');
    await admin.waitForFunction(() => window.__notifications.length >= 3, null, { timeout: WAIT });
    got = await notes(admin);
    assert(JSON.stringify(got.map((n) => n.body)) === JSON.stringify(['Can I return the blue one?', 'And the red one?', 'Back again']), `nothing while off: ${JSON.stringify(got)}`);
    log('notifications: one per Unassigned message, none for Ben\'s conversation, none while off');

    run.step = "an agent deleted: its open page's WebSocket closes (4001) and the page asks to sign in";
    const benId = (await rest('GET', '/agents')).result.find((a) => a.identity === 'ben').id;
    benEnded = true;
    await rest('DELETE', `/agents/${benId}`);
    await ben.locator('#login-email').waitFor({ timeout: WAIT });
    await ben.locator('#password-error', { hasText: 'Your session has ended' }).waitFor({ timeout: WAIT });
    log('Ben deleted: his page went back to the sign-in with "Your session has ended"');

    run.step = 'console errors';
    assert(!errors.length, `console errors:\n  ${errors.join('\n  ')}`);
  } catch (e) {
    if (errors.length) console.error(`console errors so far:\n  ${errors.join('\n  ')}`);
    throw e;
  } finally {
    for (const ctx of contexts) await ctx.close().catch(() => {});
    await browser.close();
  }
}

main().then(
  () => {
    clearTimeout(deadline);
    log('inbox_assign: all scenarios passed');
  },
  (e) => {
    clearTimeout(deadline);
    console.error(`inbox_assign FAILED at step "${run.step}": ${e.stack || e}`);
    process.exit(1);
  },
);
