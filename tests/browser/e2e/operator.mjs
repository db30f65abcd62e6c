// The e2e run's third part (see e2e.mjs): what the operator does from the page. Adds a webchat
// participant (Escape closes the panel and gives focus back), assigns the room to an agent
// from the picker (the unassign done over REST reaches the page live; the picker is cleared in
// another room), resolves it (a reopen over REST reaches the page live). With a Twilio stub:
// an inbound SMS (signed webhook) from a new number appears live in the list as a pushed
// `conversation` frame, without a REST list request; the operator's reply goes out through the
// stub (the Rust side checks what the stub received) and its status moves to "delivered" on a
// signed status callback; the operator adds a phone number to a room.

import { WAIT, assert, send, twilioHook as signedTwilioHook, waitForText } from '../lib.mjs';

const TWILIO_SID = `AC${'0'.repeat(32)}`;
const TWILIO_TOKEN = 'twilio-auth-token-e2e-0123456789';
const OUR_NUMBER = '+15005550006';
const SAM = '+14155550100';
/** What `tests/it/browser.rs` expects the stub to receive. */
const SMS_REPLY = 'Sorry Sam, we are resending it today.';

/** Participants, assignment and status, changed from the page and over REST. */
export async function manage(t) {
  const { op, rest, conv, other, run, log } = t;

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

}

/** An inbound SMS, the operator's reply and its delivery status, through the Twilio stub. */
export async function sms(t) {
  const { base, op, rest, conv, opFrames, listRequests, twilioStub, run, log } = t;
  const twilioHook = (accountId, fields) => signedTwilioHook(base, TWILIO_TOKEN, accountId, fields);

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
  const listedBefore = listRequests();
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
  assert(listRequests() === listedBefore, `the page polled the list ${listRequests() - listedBefore} times`);
  await op.waitForFunction(
    (num) => {
      const b = [...document.querySelectorAll('#conv-list button')].find((x) => x.textContent.includes(num));
      return b && b.querySelector('.badge.ch-sms') && b.querySelector('.unread') && b.textContent.includes('My parcel never arrived');
    },
    SAM,
    { timeout: WAIT },
  );
  assert(listRequests() === listedBefore, 'no list polling while the SMS room filled in');
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
