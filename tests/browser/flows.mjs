// What people do in a browser, in headless Chromium (the distribution's
// package, driven by playwright-core, pinned in package.json). The Rust
// suite tests/tests/browser.rs starts the provider and `teamform serve`, and
// runs one command of this script per step; each prints one JSON line.
//
//   node tests/browser/flows.mjs COMMAND 'JSON ARGS'
//
// Commands:
//   link    {url, email, act}        open an emailed link, sign in as email
//                                    when asked, press the page's button when
//                                    act; → {status, url, text, acted}
//   team    {base, team, email, invite: [..], role, change: {email, role},
//            shots}                  on the team page: invite several people
//                                    with a role, change one member's role,
//                                    screenshot at desktop and phone width
//                                    into the shots directory; → {text}
//
// Environment: CHROMIUM (default /usr/bin/chromium).
import { chromium } from 'playwright-core';

const [command, raw] = process.argv.slice(2);
const args = JSON.parse(raw || '{}');

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: [
    '--no-sandbox',
    '--disable-gpu',
    '--disable-quic',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
  ],
});

/// Signs in at the provider when the page is its form.
async function signInIfAsked(page, email) {
  if (await page.locator('input#email[type=email]').count()) {
    await page.fill('input#email', email);
    await Promise.all([page.waitForLoadState('load'), page.click('button[type=submit]')]);
    await page.waitForLoadState('load');
  }
}

async function link(page) {
  const first = await page.goto(args.url);
  let status = first.status();
  const signIn = page.getByRole('link', { name: 'Sign in' });
  if (await signIn.count()) {
    await Promise.all([page.waitForLoadState('load'), signIn.click()]);
    await signInIfAsked(page, args.email);
    status = 200;
  }
  // The status of the page now shown (a wrong person gets 403).
  const response = await page.reload();
  status = response.status();
  let acted = false;
  if (args.act) {
    const button = page.locator('main form button[type=submit]');
    if (await button.count()) {
      const [answer] = await Promise.all([
        page.waitForNavigation(),
        button.first().click(),
      ]);
      status = answer ? answer.status() : status;
      acted = true;
    }
  }
  return { status, url: page.url(), text: await page.locator('body').innerText(), acted };
}

async function team(page) {
  await page.goto(`${args.base}/signin?return_to=${encodeURIComponent(`/ui/teams/${args.team}`)}`);
  await signInIfAsked(page, args.email);
  if (!page.url().endsWith(`/ui/teams/${args.team}`)) {
    throw new Error(`not on the team page after signing in: ${page.url()}`);
  }
  // Invite several people at once, by label (as a screen reader user would).
  await page.getByLabel('Email addresses (one per line, or separated by commas)').fill(args.invite.join('\n'));
  await page.locator('#invite').locator('..').getByLabel(args.role, { exact: true }).check();
  await Promise.all([page.waitForNavigation(), page.getByRole('button', { name: 'Send invitations' }).click()]);
  const afterInvite = await page.locator('main').innerText();
  // Change one member's role.
  const row = page.locator('tr', { hasText: args.change.email });
  await row.getByText('Change roles').click();
  const boxes = row.locator('input[type=checkbox][name=roles]');
  for (let i = 0; i < (await boxes.count()); i += 1) {
    const box = boxes.nth(i);
    const value = await box.getAttribute('value');
    if ((value === args.change.role) !== (await box.isChecked())) await box.click();
  }
  await Promise.all([
    page.waitForNavigation(),
    row.getByRole('button', { name: `Save roles of ${args.change.email}` }).click(),
  ]);
  const text = await page.locator('main').innerText();
  // Keyboard: every control is reachable with Tab and shows focus.
  await page.keyboard.press('Tab');
  const focused = await page.evaluate(() => document.activeElement && document.activeElement.tagName);
  await page.setViewportSize({ width: 1280, height: 900 });
  await page.screenshot({ path: `${args.shots}/team-desktop.png`, fullPage: true });
  await page.setViewportSize({ width: 390, height: 844 });
  await page.screenshot({ path: `${args.shots}/team-phone.png`, fullPage: true });
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  return { afterInvite, text, focused, overflow };
}

let result;
const context = await browser.newContext();
const page = await context.newPage();
try {
  if (command === 'link') result = await link(page);
  else if (command === 'team') result = await team(page);
  else throw new Error(`unknown command ${command}`);
  process.stdout.write(`${JSON.stringify(result)}\n`);
} catch (err) {
  process.stderr.write(`${err.stack}\n`);
  process.exitCode = 1;
} finally {
  await browser.close();
}
