// The website widget in Chromium, embedded in a page of ANOTHER origin (a static server on
// 127.0.0.2 started here), against the hub at <base>. Run by tests/it/widget_browser.rs:
//   node tests/browser/widget.mjs <base url> <api key>
// Scenarios:
//  1. A visitor opens the site: the launcher shows, no conversation exists yet; the host
//     page's CSS does not reach into the widget and the widget's does not reach out.
//  2. The first message asks the pre-chat form, then opens the room; an operator (the JS
//     client in a page of the hub) sees it, types (the visitor sees "… is typing"), reads it
//     (the visitor's message shows "Read") and answers; the answer shows with the team's name.
//     Files each way: the visitor picks, drops and pastes images; the operator uploads a PDF.
//  3. Closed panel: a new answer puts an unread badge on the launcher; Escape closes the
//     panel and gives focus back to the launcher.
//  4. A reload keeps the conversation. Resolved while the visitor watches: "This conversation
//     has ended"; the visitor's next message opens the same room again.
//  5. An identity-verified visitor writes from one browser context; a second context (another
//     device) with the same identity sees the same history; a forged hash is refused.
//  6. On a phone-sized screen the panel is full-screen.

import http from 'node:http';
import crypto from 'node:crypto';
import { launch, runner, restClient, assert, watchConsole, WAIT, SHOTS } from './lib.mjs';
import fs from 'node:fs';
import path from 'node:path';

const [base, apiKey] = process.argv.slice(2);
if (!base || !apiKey) {
  console.error('usage: node widget.mjs <base url> <api key>');
  process.exit(2);
}
const run = runner('widget');
const guard = run.guard(200_000);
const rest = restClient(base, apiKey);
const SECRET = 'shop-identity-secret-0123456789';
const hmac = (id, secret) => crypto.createHmac('sha256', secret).update(id).digest('hex');

// The customer's site: its own origin, hostile CSS, one script tag.
let key = '';
const site = http.createServer((req, res) => {
  const u = new URL(req.url, 'http://x');
  const attrs = [`data-key="${key}"`];
  if (u.searchParams.get('id')) {
    attrs.push(`data-identifier="${u.searchParams.get('id')}"`, `data-identifier-hash="${u.searchParams.get('hash')}"`);
  }
  res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
  res.end(`<!doctype html><html><head><title>Shop</title>
<style>* { color: rgb(255, 0, 0) !important; font-size: 40px; } button { background: rgb(255, 0, 0) !important; } .panel { display: none !important; }</style>
</head><body><h1>Shop</h1><div class="msg" id="host-msg">host element named like the widget's</div>
<script src="${base}/widget.js" ${attrs.join(' ')} async></script></body></html>`);
});
await new Promise((r) => site.listen(0, '127.0.0.2', r));
const SITE = `http://127.0.0.2:${site.address().port}`;

const browser = await launch();
const errors = [];
const step = (s) => { run.step = s; run.log(s); };
const countConversations = async () => (await rest('GET', '/conversations?page_size=100')).result.length;
const shots = [];

async function visitorPage(ctx, who, url = SITE) {
  const page = await ctx.newPage();
  // The forged-identity page refuses on purpose; 4xx resource errors of it are expected.
  watchConsole(page, who, errors, (t) => who === 'forger' || /status of 40[13]/.test(t));
  await page.goto(url);
  await page.locator('.launcher').waitFor({ timeout: WAIT });
  shots.push([page, who]);
  return page;
}

async function sendAsVisitor(page, text) {
  const box = page.locator('textarea');
  await box.click();
  await box.fill(text);
  await box.press('Enter');
}

const shown = (page, text, who) =>
  page.locator('.msg .text', { hasText: text }).first().waitFor({ timeout: WAIT }).catch(() => {
    throw new Error(`${who} never showed "${text}"`);
  });

try {
  step('website account');
  const account = await rest('POST', '/conversation_accounts', {
    type: 'webchat', provider: 'web', name: 'Shop',
    credentials: { identity_secret: SECRET },
    widget: { allowed_origins: [SITE], branding: { name: 'Shop support', colour: '#0a7d33', greeting: 'Hi! How can we help?' },
      prechat: { name: 'required', email: 'optional' } },
  });
  key = account.widget.public_key;

  step('1. the launcher on another origin, no conversation, no CSS leak');
  const ctxA = await browser.newContext();
  const a = await visitorPage(ctxA, 'visitor');
  assert((await countConversations()) === 0, 'a page view opened a conversation');
  const launcherBg = await a.locator('.launcher').evaluate((e) => getComputedStyle(e).backgroundColor);
  assert(launcherBg === 'rgb(10, 125, 51)', `host CSS reached the launcher: ${launcherBg}`);
  await a.locator('.notice', { hasText: "We're offline" }).waitFor({ state: 'attached', timeout: WAIT });
  const hostMsg = await a.locator('#host-msg').evaluate((e) => getComputedStyle(e).maxWidth);
  assert(hostMsg === 'none', `widget CSS reached the host page: max-width ${hostMsg}`);
  assert((await a.locator('.launcher').getAttribute('aria-expanded')) === 'false', 'launcher aria-expanded');

  step('2. first message: pre-chat form, then the room');
  await a.locator('.launcher').click();
  assert(await a.locator('.panel').isVisible(), 'panel did not open');
  assert(await a.locator('textarea').evaluate((e) => e.getRootNode().activeElement === e), 'focus is not in the composer');
  await a.locator('.greeting', { hasText: 'How can we help' }).waitFor({ timeout: WAIT });
  await sendAsVisitor(a, 'Where is my order 1234?');
  await a.locator('form.prechat input[name="name"]').fill('Vera Visitor');
  await a.locator('form.prechat button').click();
  await shown(a, 'Where is my order 1234?', 'visitor');
  const convs = (await rest('GET', '/conversations?page_size=100')).result;
  assert(convs.length === 1, `expected one conversation, got ${convs.length}`);
  const room = convs[0].id;
  assert(convs[0].name === 'Vera Visitor', `conversation named ${convs[0].name}`);

  step('2b. the operator types, reads and answers');
  const op = await (await browser.newContext()).newPage();
  watchConsole(op, 'operator', errors);
  await op.goto(`${base}/healthz`);
  const opToken = (await rest('POST', '/tokens', { identity: 'ana', all_conversations: true })).token;
  await op.evaluate(async ([token, room]) => {
    const { SwitchboardClient } = await import('/sdk/index.js');
    const c = new SwitchboardClient({ url: location.origin, token });
    window.op = c;
    window.seen = [];
    c.on('message', (m) => window.seen.push(m));
    c.connect();
    await new Promise((r) => c.once('subscribed', r) && c.subscribe(room, { since: 0 }));
  }, [opToken, room]);
  await op.waitForFunction(() => window.seen.some((m) => m.text === 'Where is my order 1234?'), null, { timeout: WAIT });
  await op.evaluate((room) => window.op.send(room, { text: 'It ships tomorrow, Vera.' }), room);
  await shown(a, 'It ships tomorrow, Vera.', 'visitor');
  await op.evaluate((room) => window.op.typing(room), room);
  await a.locator('.typing', { hasText: 'Shop support is typing' }).waitFor({ timeout: WAIT });
  await op.evaluate((room) => window.op.read(room, Math.max(...window.seen.map((m) => m.seq))), room);
  await a.locator('.msg.mine .meta[data-state="read"]').first().waitFor({ timeout: WAIT });
  const author = await a.locator('.msg.theirs', { hasText: 'It ships tomorrow' }).locator('.who').textContent();
  assert(author.includes('Shop support'), `answer shown as from "${author}"`);
  assert(!author.includes('ana'), 'the operator identity reached the visitor');
  const live = await a.locator('.log').getAttribute('aria-live');
  assert(live === 'polite', 'the message log is not a live region');

  step('2c. files each way: picked, dropped and pasted by the visitor; uploaded by the operator');
  const PNG = 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==';
  await a.locator('input[type="file"]').setInputFiles({ name: 'receipt.png', mimeType: 'image/png', buffer: Buffer.from(PNG, 'base64') });
  await a.locator('.msg.mine img.media').first().waitFor({ timeout: WAIT });
  for (const [how, name] of [['drop', 'dropped.png'], ['paste', 'pasted.png']]) {
    await a.locator('.panel').evaluate((panel, [how, name, b64]) => {
      const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
      const dt = new DataTransfer();
      dt.items.add(new File([bytes], name, { type: 'image/png' }));
      if (how === 'drop') panel.dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }));
      else panel.querySelector('textarea').dispatchEvent(new ClipboardEvent('paste', { clipboardData: dt, bubbles: true, cancelable: true }));
    }, [how, name, PNG]);
  }
  await a.waitForFunction(() => document.querySelector('#switchboard-widget').shadowRoot.querySelectorAll('.msg.mine img.media').length === 3, null, { timeout: WAIT })
    .catch(() => { throw new Error('the visitor does not show its three images'); });
  const got = await op.waitForFunction(() => {
    const names = window.seen.flatMap((m) => m.medias || []).map((x) => x.name);
    return ['receipt.png', 'dropped.png', 'pasted.png'].every((n) => names.includes(n)) && window.seen.flatMap((m) => m.medias || []);
  }, null, { timeout: WAIT }).catch(() => { throw new Error('the operator never got the three files'); });
  const receipt = (await got.jsonValue()).find((x) => x.name === 'receipt.png');
  const fetched = await fetch(new URL(receipt.url, base));
  assert(fetched.ok && fetched.headers.get('content-type') === 'image/png', `the visitor's file answers ${fetched.status} ${fetched.headers.get('content-type')}`);
  await op.evaluate(async (room) => {
    const pdf = new Blob(['%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n'], { type: 'application/pdf' });
    const m = await window.op.upload(pdf, { conversationId: room, filename: 'invoice.pdf' });
    await window.op.send(room, { text: 'Your invoice', medias: [{ media_id: m.id }] });
  }, room);
  const link = a.locator('.msg.theirs a', { hasText: 'invoice.pdf' });
  await link.waitFor({ timeout: WAIT }).catch(() => { throw new Error("the operator's file never showed in the widget"); });
  const pdfRes = await fetch(new URL(await link.getAttribute('href'), base));
  assert(pdfRes.ok && /attachment/.test(pdfRes.headers.get('content-disposition') || ''), `the operator's file answers ${pdfRes.status}`);

  step('3. Escape closes, focus back on the launcher; unread badge');
  await a.locator('textarea').press('Escape');
  assert(!(await a.locator('.panel').isVisible()), 'Escape did not close the panel');
  assert(await a.locator('.launcher').evaluate((e) => e.getRootNode().activeElement === e), 'focus did not go back to the launcher');
  await op.evaluate((room) => window.op.send(room, { text: 'Anything else?' }), room);
  await a.locator('.badge', { hasText: '1' }).waitFor({ timeout: WAIT });
  assert((await a.locator('.launcher').getAttribute('aria-label')).includes('1 unread'), 'launcher label lacks the unread count');
  await a.locator('.launcher').press('Enter');
  await shown(a, 'Anything else?', 'visitor');
  assert(!(await a.locator('.badge').isVisible()), 'badge stayed after opening');
  await sendAsVisitor(a, 'No, thanks!');
  await op.waitForFunction(() => window.seen.some((m) => m.text === 'No, thanks!'), null, { timeout: WAIT });

  step('4. a reload keeps the conversation');
  await a.reload();
  await a.locator('.launcher').click();
  for (const t of ['Where is my order 1234?', 'It ships tomorrow, Vera.', 'Anything else?', 'No, thanks!']) await shown(a, t, 'reloaded visitor');
  assert((await countConversations()) === 1, 'the reload opened another conversation');

  step('4b. resolved while watching: "ended", and the next message opens it again');
  const resolved = await rest('PUT', `/conversations/${room}`, { status: 'resolved' });
  assert(resolved.status === 'resolved', `status ${resolved.status}`);
  await a.locator('.ended', { hasText: 'This conversation has ended' }).waitFor({ timeout: WAIT });
  await sendAsVisitor(a, 'One more thing');
  await shown(a, 'One more thing', 'visitor');
  // The reopening reaches the page as its own frame, possibly just after the message.
  await a.locator('.ended').waitFor({ state: 'detached', timeout: WAIT }).catch(() => {
    throw new Error('the "ended" notice stayed after the conversation reopened');
  });
  const reopened = await rest('GET', `/conversations/${room}`);
  assert(reopened.status === 'open', `the visitor's message left the room ${reopened.status}`);
  assert((await countConversations()) === 1, 'a resolved room was replaced instead of reopened');
  await op.waitForFunction(() => window.seen.some((m) => m.text === 'One more thing'), null, { timeout: WAIT });

  step('5. identity-verified visitor on two devices; a forged hash');
  const known = `${SITE}/?id=customer-42&hash=${hmac('customer-42', SECRET)}`;
  const laptop = await visitorPage(await browser.newContext(), 'laptop', known);
  await laptop.locator('.launcher').click();
  await sendAsVisitor(laptop, 'Hello from my laptop');
  await shown(laptop, 'Hello from my laptop', 'laptop');
  const phone = await visitorPage(await browser.newContext(), 'phone', known);
  await phone.locator('.launcher').click();
  await shown(phone, 'Hello from my laptop', 'second device');
  await sendAsVisitor(phone, 'And from my phone');
  await shown(laptop, 'And from my phone', 'laptop');
  const forger = await (await browser.newContext()).newPage();
  watchConsole(forger, 'forger', errors, () => true);
  await forger.goto(`${SITE}/?id=customer-42&hash=${hmac('customer-42', 'guessed-secret')}`);
  const refused = await forger.waitForFunction(() => window.SwitchboardWidget?.ready?.then((w) => w.failed?.status ?? 0), null, { timeout: WAIT });
  assert((await refused.jsonValue()) === 403, `forged hash answered ${await refused.jsonValue()}`);
  assert((await forger.locator('.launcher').count()) === 0, 'a forged identity got a widget');

  step('6. full-screen on a phone');
  const small = await visitorPage(await browser.newContext({ viewport: { width: 375, height: 700 } }), 'small');
  await small.locator('.launcher').click();
  const box = await small.locator('.panel').boundingBox();
  assert(box && box.width === 375 && box.height === 700 && box.x === 0 && box.y === 0, `panel on a phone: ${JSON.stringify(box)}`);

  assert(errors.length === 0, `console errors:\n${errors.join('\n')}`);
  run.log('all widget scenarios passed');
} catch (e) {
  console.error(`widget: failed during "${run.step}": ${e.stack || e}`);
  if (errors.length) console.error(errors.join('\n'));
  process.exitCode = 1;
} finally {
  fs.mkdirSync(SHOTS, { recursive: true });
  for (const [p, who] of shots) await p.screenshot({ path: path.join(SHOTS, `widget-${who}.png`) }).catch(() => {});
  clearTimeout(guard);
  await browser.close();
  site.close();
}
