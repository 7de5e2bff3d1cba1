// The browser's own share of one form: the two navigations every tool must wait for (open the
// form, then the result page after submit), timed with nothing but CDP `Page.navigate` and the
// DOMContentLoaded event (the earliest a tool can act on a document), in the same Chromium the fill
// benchmark uses. No client fills and submits a form faster than this; it shows how much of the
// per-form time is left to the tool.
//
//   node bench/nav_floor.mjs BASE_URL [N]
//
// It also times the least a driver can do with Deskhand's own in-page script: load the form, ONE
// call of `__deskhand.fillForm` (fill 20 fields by label and click submit), wait for the result
// page's DOMContentLoaded, all through Playwright's transport. That is a tool with zero overhead of
// its own beyond one round trip per form: `one_call_ms` bounds what any driver of this page reaches
// on this machine, `one_call_in_page_ms` is the fill's own time inside the page.
//
// Prints one JSON line: {"tool":"navigation-floor","form_ms":..,"result_ms":..,"floor_ms":..,
//   "one_call_ms":..,"one_call_mean_ms":..,"one_call_in_page_ms":..}
// (`one_call_ms` is the median; the mean is there to set beside a tool's mean per form.)
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { chromium } from 'playwright-core';

const [base, nArg] = process.argv.slice(2);
if (!base) {
  console.error('usage: node bench/nav_floor.mjs BASE_URL [N]');
  process.exit(2);
}
const N = Number.parseInt(nArg || '50', 10);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  headless: true,
});
const median = (xs) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)];
try {
  const page = await browser.newPage();
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('Page.enable');
  const time = async (url) => {
    const loaded = new Promise((r) => cdp.once('Page.domContentEventFired', r));
    const t = performance.now();
    await cdp.send('Page.navigate', { url });
    await loaded;
    const ms = performance.now() - t;
    // Let the load finish before the next navigation, untimed.
    await page.waitForLoadState('load');
    return ms;
  };
  const form = `${base.replace(/\/+$/, '')}/signup.html`;
  // The result page as the form's GET submit reaches it (a query string of 20 values).
  const result = `${base.replace(/\/+$/, '')}/submitted.html?first_name=Zo%C3%AB&email=zoe.odegard%40example.com&country=NO&plan=pro&newsletter=on`;
  const f = [];
  const r = [];
  for (let i = 0; i < N + 5; i++) {
    const a = await time(form);
    const b = await time(result);
    if (i >= 5) { f.push(a); r.push(b); }
  }
  const round = (x) => Math.round(x * 10) / 10;
  const fm = median(f);
  const rm = median(r);

  // One call per form, on a page of its own with the script installed as Deskhand installs it.
  const here = new URL('.', import.meta.url);
  const script = readFileSync(new URL('../browser/js/deskhand.js', here), 'utf8');
  const values = JSON.parse(readFileSync(new URL('../fixtures/sites/signup.values.json', here), 'utf8'));
  const fields = values.map((v) => ({ key: v.label, value: v.kind === 'check' ? true : v.value }));
  const one = await browser.newPage();
  await one.addInitScript(script);
  const total = [];
  const inPage = [];
  for (let i = 0; i < N + 5; i++) {
    const t = performance.now();
    await one.goto(form);
    const res = await one.evaluate(async (req) => {
      const t0 = performance.now();
      const rep = await globalThis.__deskhand.fillForm(req);
      return { ms: performance.now() - t0, submitted: !!(rep.submit && rep.submit.status === 'ok') };
    }, { fields, submit: { button: 'Create account' } });
    if (!res.submitted) throw new Error('the one-call fill did not submit');
    await one.waitForURL(/submitted\.html/, { waitUntil: 'domcontentloaded' });
    if (i >= 5) { total.push(performance.now() - t); inPage.push(res.ms); }
  }
  console.log(JSON.stringify({ tool: 'navigation-floor', runs: N, form_ms: round(fm), result_ms: round(rm), floor_ms: round(fm + rm),
    one_call_ms: round(median([...total])), one_call_mean_ms: round(total.reduce((a, b) => a + b, 0) / total.length),
    one_call_in_page_ms: round(median(inPage)) }));
} finally {
  await browser.close();
}
