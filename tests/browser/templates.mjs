// The WhatsApp template picker of the inbox (issue 20) in Debian's headless Chromium.
//
//   node tests/browser/templates.mjs <base url> <agent email> <password> <conversation id>
//
// The room's WhatsApp customer wrote 25 hours ago (set up by tests/it/inbox_templates.rs), so
// the window is closed. The agent signs in with email and password, opens the room from the
// list, and sees the closed-window notice with free text switched off; from the keyboard she
// opens "Send a template", picks order_update (the preview shows its body), is told in words
// when a parameter is missing, fills both and sends with Enter. The room then shows the
// rendered text; the Rust side checks the stub Graph API got a `type: template` message.
// axe-core runs on the notice and on the open picker; no console error is allowed.

import fs from 'node:fs';
import path from 'node:path';
import { SHOTS, WAIT, assert, axeClean, launch, runner, signInPassword, waitForText, watchConsole } from './lib.mjs';

const [base, email, password, room] = process.argv.slice(2);
if (!base || !email || !password || !room) {
  console.error('usage: node templates.mjs <base url> <agent email> <password> <conversation id>');
  process.exit(2);
}
const run = runner('templates');
const { log } = run;
const errors = [];
const deadline = run.guard(120_000);
const RENDERED = 'Hi Sheena, your order #1042 is ready. Reply to this message to continue the conversation.';

async function main() {
  fs.mkdirSync(SHOTS, { recursive: true });
  const browser = await launch();
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await ctx.newPage();
  watchConsole(page, 'agent', errors);
  try {
    run.step = 'sign in, open the WhatsApp room';
    await signInPassword(page, base, email, password, 'agent');
    const item = page.locator(`#conv-list button.conv[data-id="${room}"]`);
    await item.waitFor({ timeout: WAIT });
    await item.click();

    run.step = 'the closed-window notice';
    const notice = page.locator('#window-closed');
    await notice.waitFor({ state: 'visible', timeout: WAIT }).catch(() => {
      throw new Error('the room never showed the closed-window notice');
    });
    const said = await page.textContent('#window-text');
    assert(/24-hour WhatsApp window closed/.test(said), `notice says: ${said}`);
    assert(await page.isDisabled('#composer-text'), 'free text stays possible with the window closed');
    const ph = await page.getAttribute('#composer-text', 'placeholder');
    assert(/window is closed/.test(ph), `placeholder: ${ph}`);
    await axeClean(page, 'the closed-window notice');
    log('closed-window notice shown, free text off, axe-clean');

    run.step = 'pick a template from the keyboard';
    await page.focus('#tpl-open');
    await page.keyboard.press('Enter');
    await page.waitForFunction(() => document.activeElement && document.activeElement.id === 'tpl-select' && !document.querySelector('#tpl-select').disabled, null, { timeout: WAIT });
    const options = await page.$$eval('#tpl-select option', (os) => os.map((o) => o.textContent));
    assert(options.includes('order_update (en_US)') && options.includes('follow_up (en_US)'), `templates listed: ${JSON.stringify(options)}`);
    await page.selectOption('#tpl-select', { label: 'order_update (en_US)' });
    const preview = await page.textContent('#tpl-preview');
    assert(preview.startsWith('Hi {{1}}, your order {{2}} is ready.'), `preview: ${preview}`);
    await page.locator('#tpl-param-1').fill('Sheena');
    await page.locator('#tpl-param-1').press('Enter');
    await page.waitForFunction(() => /parameter \{\{2\}\}/.test(document.querySelector('#tpl-error').textContent), null, { timeout: WAIT }).catch(async () => {
      throw new Error(`a missing parameter was not explained: "${await page.textContent('#tpl-error')}"`);
    });
    assert(await page.evaluate(() => document.activeElement.id === 'tpl-param-2'), 'the missing parameter did not get the focus');
    await page.keyboard.type('#1042');
    assert((await page.textContent('#tpl-preview')) === RENDERED, `preview: ${await page.textContent('#tpl-preview')}`);
    await axeClean(page, 'the template picker');
    await page.screenshot({ path: path.join(SHOTS, 'inbox-template-picker.png') });
    log('order_update picked, missing parameter explained, preview filled, axe-clean');

    run.step = 'send it';
    await page.keyboard.press('Enter');
    await waitForText(page, RENDERED, 'agent');
    await page.locator('#tpl-form').waitFor({ state: 'hidden', timeout: WAIT });
    assert(await page.evaluate(() => document.activeElement.id === 'tpl-open'), 'the focus did not return to "Send a template"');
    log('template sent; the room shows the rendered text');
    assert(!errors.length, `console errors:\n${errors.join('\n')}`);
  } catch (e) {
    await page.screenshot({ path: path.join(SHOTS, 'inbox-template-failure.png') }).catch(() => {});
    throw e;
  } finally {
    await browser.close();
  }
}

main()
  .then(() => {
    clearTimeout(deadline);
    log('ok');
  })
  .catch((e) => {
    console.error(`templates: ${e.stack || e}`);
    process.exit(1);
  });
