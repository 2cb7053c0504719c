// Drives Debian's headless Chromium through the web example with playwright-core.
// Run by tests/browser.rs: node flow.mjs <app url> <vehicle id to choose> <screenshot path>
// Prints one JSON line of what the browser saw; the Rust test asserts on it. Exits non-zero
// (with the reason on stderr) when a step fails or times out.
import { chromium } from 'playwright-core';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const [appUrl, vehicleId, screenshot] = process.argv.slice(2);
if (!appUrl || !vehicleId || !screenshot) {
  console.error('usage: node flow.mjs <app url> <vehicle id> <screenshot path>');
  process.exit(2);
}
const executablePath = process.env.SMARTCAR_CHROMIUM || '/usr/bin/chromium';
const profile = mkdtempSync(join(tmpdir(), 'smartcar-browser-'));
// Without the background-networking flags Chromium waits on the (closed) network.
const args = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];

const rows = (page) => page.$$eval('#vehicles tbody tr', (trs) => trs.map((tr) => ({
  id: tr.dataset.vehicle,
  name: tr.querySelector('.name').textContent,
  vin: tr.querySelector('.vin').textContent,
  odometer: tr.querySelector('.odometer').textContent,
  energy: tr.querySelector('.energy').textContent,
  doors: tr.querySelector('.lock-status').textContent,
})));

let context;
const out = { steps: [] };
const step = (name) => { out.steps.push(name); console.error(`browser: ${name}`); };
try {
  context = await chromium.launchPersistentContext(profile, {
    executablePath, headless: true, args, viewport: { width: 1100, height: 700 },
  });
  context.setDefaultTimeout(20000);
  context.setDefaultNavigationTimeout(20000);
  const page = context.pages()[0] ?? await context.newPage();

  step('open /login');
  await page.goto(`${appUrl}/login`);
  await page.waitForSelector('#approve');
  out.connectUrl = page.url();
  out.connectTitle = await page.title();
  out.offered = await page.$$eval('input[name=vehicle]', (xs) => xs.map((x) => x.value));

  step('choose a vehicle');
  for (const box of await page.$$('input[name=vehicle]')) {
    const value = await box.getAttribute('value');
    if ((value === vehicleId) !== (await box.isChecked())) await box.click();
  }
  step('approve');
  await Promise.all([page.waitForURL(`${appUrl}/vehicles**`), page.click('#approve')]);
  await page.waitForSelector('#vehicles');
  out.tableUrl = page.url();
  out.before = await rows(page);
  out.html = await page.content();
  out.cookies = (await context.cookies()).map((c) => `${c.name}=${c.value}`);
  await page.screenshot({ path: screenshot, fullPage: true });

  step('press Lock');
  const button = page.locator(`tr[data-vehicle="${vehicleId}"] button.lock`);
  await Promise.all([page.waitForURL(`${appUrl}/vehicles?locked=**`), button.click()]);
  await page.waitForSelector('#notice');
  out.notice = await page.textContent('#notice');
  out.after = await rows(page);
  await page.screenshot({ path: screenshot.replace(/\.png$/, '-locked.png'), fullPage: true });

  step('sign out');
  await Promise.all([page.waitForURL(`${appUrl}/`), page.click('#logout button.logout')]);
  out.cookiesAfterLogout = (await context.cookies()).map((c) => c.name);
  await page.goto(`${appUrl}/vehicles`);
  out.afterLogout = page.url();

  step('deny path');
  await page.goto(`${appUrl}/login`);
  await page.waitForSelector('#deny');
  await Promise.all([page.waitForURL(`${appUrl}/callback**`), page.click('#deny')]);
  await page.waitForSelector('#error');
  out.denied = {
    title: await page.textContent('h1'),
    message: await page.textContent('#error'),
    retry: await page.getAttribute('#retry', 'href'),
  };
  await page.screenshot({ path: screenshot.replace(/\.png$/, '-denied.png'), fullPage: true });
  step('done');
  console.log(JSON.stringify(out));
} catch (e) {
  console.error(`browser flow failed after steps ${JSON.stringify(out.steps)}: ${e?.stack ?? e}`);
  process.exitCode = 1;
} finally {
  if (context) await context.close().catch(() => {});
  rmSync(profile, { recursive: true, force: true });
}
