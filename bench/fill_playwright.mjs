// Form-fill benchmark, Playwright side.
//
//   node bench/fill_playwright.mjs BASE_URL N [signup|trip]
//
// signup (default): fills fixtures/sites/signup.html N times (after 5 warm-up
// rounds) with the values in fixtures/sites/signup.values.json, locating every
// field by its label the way a Playwright user would, submits, and waits for
// the result page.
// trip: fills fixtures/widgets/trip.html (BASE_URL serving fixtures/widgets)
// with fixtures/widgets/trip.values.json, handling its widgets by hand the way
// a Playwright user writes it: open the jQuery UI date picker, step its months,
// click the day; type into the autocomplete, wait for its list, click the
// option; fill the range input. Prints one JSON line:
//   {"tool":"playwright","forms":N,"ms_per_form":X,"p50_ms":..,"p99_ms":..}
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import { chromium } from 'playwright-core';

const WARMUP = 5;

function usage(msg) {
  if (msg) console.error(`error: ${msg}`);
  console.error('usage: node bench/fill_playwright.mjs BASE_URL N [signup|trip]');
  process.exit(2);
}

const [baseArg, nArg, formArg = 'signup'] = process.argv.slice(2);
if (!['signup', 'trip'].includes(formArg)) usage(`FORM must be signup or trip, got ${formArg}`);
if (!baseArg || !nArg) usage();
const BASE = baseArg.replace(/\/+$/, '');
const N = Number.parseInt(nArg, 10);
if (!Number.isInteger(N) || N < 1) usage(`N must be a positive integer, got ${nArg}`);

const here = dirname(fileURLToPath(import.meta.url));
const valuesPath = formArg === 'trip'
  ? join(here, '..', 'fixtures', 'widgets', 'trip.values.json')
  : join(here, '..', 'fixtures', 'sites', 'signup.values.json');
const fields = JSON.parse(readFileSync(valuesPath, 'utf8'));
const emailField = fields.find((f) => f.label === 'Email');

const MONTHS = ['January', 'February', 'March', 'April', 'May', 'June', 'July', 'August',
  'September', 'October', 'November', 'December'];

// A jQuery UI date picker by hand: open it, step to the month, click the day.
async function pickDate(page, label, iso) {
  const [y, m, d] = iso.split('-').map(Number);
  await page.getByLabel(label, { exact: true }).click();
  const cal = page.locator('#ui-datepicker-div');
  const title = cal.locator('.ui-datepicker-title');
  for (let i = 0; i < 240; i++) {
    const [mon, yr] = (await title.textContent()).trim().split(/\s+/);
    const diff = (y - Number(yr)) * 12 + (m - 1 - MONTHS.indexOf(mon));
    if (diff === 0) break;
    await cal.locator(diff > 0 ? '.ui-datepicker-next' : '.ui-datepicker-prev').click();
  }
  await cal.locator('td:not(.ui-datepicker-other-month) a', { hasText: new RegExp(`^${d}$`) }).click();
}

// A jQuery UI autocomplete by hand: type, wait for the list, click the option.
async function pickOption(page, label, typed, option) {
  await page.getByLabel(label, { exact: true }).fill(typed);
  await page.locator('.ui-autocomplete .ui-menu-item-wrapper', { hasText: option }).click();
}

async function fillTrip(page) {
  await page.goto(`${BASE}/trip.html`);
  for (const f of fields) {
    switch (f.kind) {
      case 'fill':
      case 'range':
        await page.getByLabel(f.label, { exact: true }).fill(String(f.value));
        break;
      case 'datepicker':
        await pickDate(page, f.label, f.value);
        break;
      case 'autocomplete':
        await pickOption(page, f.label, f.value, f.pick);
        break;
      default:
        throw new Error(`unknown kind ${JSON.stringify(f.kind)} for ${JSON.stringify(f.label)}`);
    }
  }
  await page.getByRole('button', { name: 'Request trip' }).click();
  await page.locator('#result').waitFor();
}

async function fillOnce(page) {
  if (formArg === 'trip') return fillTrip(page);
  await page.goto(`${BASE}/signup.html`);
  for (const f of fields) {
    switch (f.kind) {
      case 'fill':
        await page.getByLabel(f.label, { exact: true }).fill(String(f.value));
        break;
      case 'select':
        await page.getByLabel(f.label, { exact: true }).selectOption({ label: String(f.value) });
        break;
      case 'check':
        if (f.value === false) await page.getByLabel(f.label, { exact: true }).uncheck();
        else await page.getByLabel(f.label, { exact: true }).check();
        break;
      case 'radio':
        await page.getByRole('radio', { name: String(f.value), exact: true }).check();
        break;
      default:
        throw new Error(`unknown kind ${JSON.stringify(f.kind)} for ${JSON.stringify(f.label)}`);
    }
  }
  await page.getByRole('button', { name: 'Create account' }).click();
  await page.locator('#result').waitFor();
}

function percentile(sorted, p) {
  if (sorted.length === 0) return 0;
  // nearest-rank
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1];
}

const round = (x) => Math.round(x * 1000) / 1000;

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: [
    '--no-sandbox',
    '--disable-gpu',
    '--disable-quic',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
  ],
  headless: true,
});

let exitCode = 0;
try {
  const context = await browser.newContext();
  const page = await context.newPage();

  for (let i = 0; i < WARMUP; i++) await fillOnce(page);

  const times = [];
  const t0 = performance.now();
  for (let i = 0; i < N; i++) {
    const s = performance.now();
    await fillOnce(page);
    times.push(performance.now() - s);
  }
  const total = performance.now() - t0;

  // Verify the last submission actually carried the values.
  if (formArg === 'trip') {
    const sent = JSON.parse((await page.locator('#result').textContent()) || '{}');
    const want = { date: '02/14/2027', from: 'Porto São Bento', budget: '1250' };
    for (const [k, v] of Object.entries(want)) {
      if (sent[k] !== v) throw new Error(`result page shows ${k}=${JSON.stringify(sent[k])}, expected ${JSON.stringify(v)}`);
    }
  } else if (emailField) {
    const shown = (await page.locator('#result dd[data-name="email"]').textContent()) ?? '';
    if (shown.trim() !== String(emailField.value)) {
      throw new Error(`result page shows email ${JSON.stringify(shown)}, expected ${JSON.stringify(emailField.value)}`);
    }
  }
  const dds = await page.locator('#result dd').count();
  if (formArg === 'signup' && dds < fields.length) {
    throw new Error(`result page shows ${dds} values, expected at least ${fields.length}`);
  }

  times.sort((a, b) => a - b);
  console.log(JSON.stringify({
    tool: 'playwright',
    form: formArg,
    forms: N,
    ms_per_form: round(total / N),
    p50_ms: round(percentile(times, 50)),
    p99_ms: round(percentile(times, 99)),
  }));
} catch (err) {
  console.error(`fill_playwright: ${err && err.stack ? err.stack : err}`);
  exitCode = 1;
} finally {
  await browser.close();
}
process.exit(exitCode);
