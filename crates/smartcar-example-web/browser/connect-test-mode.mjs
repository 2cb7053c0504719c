// Drives Debian's headless Chromium through the simulator's Connect in test mode with the
// element ids Smartcar's official SDKs' end-to-end suites select on the real Connect.
// Run by tests/connect_test_mode.rs:
//   node connect-test-mode.mjs <connect url> <redirect uri> <brand id> <brand name> <e-mail> <screenshot> [deny]
// The redirect URI is the test's own loopback listener.
// Prints one JSON line of what the browser saw; exits non-zero when a step fails or times out.
import { chromium } from 'playwright-core';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const [connectUrl, redirectUri, brand, brandName, email, screenshot, deny] = process.argv.slice(2);
if (!connectUrl || !redirectUri || !brand || !brandName || !email || !screenshot) {
  console.error('usage: node connect-test-mode.mjs <connect url> <redirect uri> <brand id> <brand name> <e-mail> <screenshot> [deny]');
  process.exit(2);
}
const executablePath = process.env.SMARTCAR_CHROMIUM || '/usr/bin/chromium';
const profile = mkdtempSync(join(tmpdir(), 'smartcar-connect-'));
const args = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];

let context;
const out = { steps: [] };
const step = (name) => { out.steps.push(name); console.error(`connect: ${name}`); };
try {
  context = await chromium.launchPersistentContext(profile, {
    executablePath, headless: true, args, viewport: { width: 900, height: 900 },
  });
  context.setDefaultTimeout(20000);
  context.setDefaultNavigationTimeout(20000);
  const page = context.pages()[0] ?? await context.newPage();

  step('preamble');
  await page.goto(connectUrl);
  await page.click('button#continue-button');

  step('brand list');
  await page.waitForSelector(`button#${brand}.brand-list-item`);
  out.brandCount = await page.locator('button.brand-list-item').count();
  // The search box hides the other brands as one types.
  await page.fill('input#brand-search', brandName.slice(0, 4));
  out.visibleAfterSearch = await page.$$eval('button.brand-list-item',
    (bs) => bs.filter((b) => !b.hidden).map((b) => b.id));
  out.urlAfterPreamble = page.url();
  await page.click(`button#${brand}.brand-list-item`);

  step('login');
  await page.waitForSelector('#sign-in-button');
  out.loginTitle = await page.textContent('h1');
  await page.fill('input#username', email);
  await page.fill('input#password', 'any password');
  await page.click('button#sign-in-button');

  step('permissions');
  await page.waitForSelector('.page-content #approval-button');
  out.permissions = await page.$$eval('#permissions input[name=permission]',
    (xs) => xs.map((x) => ({ name: x.value, required: x.disabled, checked: x.checked })));
  out.vehicles = await page.$$eval('input[name=vehicle]', (xs) => xs.map((x) => x.value));
  await page.screenshot({ path: screenshot, fullPage: true });
  // Leave every optional permission but the first one checked.
  const optional = out.permissions.filter((p) => !p.required);
  if (optional.length > 0) {
    await page.uncheck(`#permissions input[value="${optional[0].name}"]`);
    out.unchecked = optional[0].name;
  }
  const button = deny ? 'button#deny-button' : 'button#approval-button';
  step(deny ? 'deny' : 'approve');
  await Promise.all([page.waitForURL(`${redirectUri}**`), page.click(button)]);
  out.redirect = page.url();
  step('done');
  console.log(JSON.stringify(out));
} catch (e) {
  console.error(`connect flow failed after steps ${JSON.stringify(out.steps)}: ${e?.stack ?? e}`);
  process.exitCode = 1;
} finally {
  if (context) await context.close().catch(() => {});
  rmSync(profile, { recursive: true, force: true });
}
