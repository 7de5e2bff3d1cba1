// Form-fill benchmark, Playwright side.
//
//   node bench/fill_playwright.mjs BASE_URL N
//
// Fills fixtures/sites/signup.html N times (after 5 warm-up rounds) with the
// values in fixtures/sites/signup.values.json, locating every field by its
// label the way a Playwright user would, submits, and waits for the result
// page. Prints one JSON line:
//   {"tool":"playwright","forms":N,"ms_per_form":X,"p50_ms":..,"p99_ms":..}
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import { chromium } from 'playwright-core';

const WARMUP = 5;

function usage(msg) {
  if (msg) console.error(`error: ${msg}`);
  console.error('usage: node bench/fill_playwright.mjs BASE_URL N');
  process.exit(2);
}

const [baseArg, nArg] = process.argv.slice(2);
if (!baseArg || !nArg) usage();
const BASE = baseArg.replace(/\/+$/, '');
const N = Number.parseInt(nArg, 10);
if (!Number.isInteger(N) || N < 1) usage(`N must be a positive integer, got ${nArg}`);

const here = dirname(fileURLToPath(import.meta.url));
const valuesPath = join(here, '..', 'fixtures', 'sites', 'signup.values.json');
const fields = JSON.parse(readFileSync(valuesPath, 'utf8'));
const emailField = fields.find((f) => f.label === 'Email');

async function fillOnce(page) {
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
  if (emailField) {
    const shown = (await page.locator('#result dd[data-name="email"]').textContent()) ?? '';
    if (shown.trim() !== String(emailField.value)) {
      throw new Error(`result page shows email ${JSON.stringify(shown)}, expected ${JSON.stringify(emailField.value)}`);
    }
  }
  const dds = await page.locator('#result dd').count();
  if (dds < fields.length) {
    throw new Error(`result page shows ${dds} values, expected at least ${fields.length}`);
  }

  times.sort((a, b) => a - b);
  console.log(JSON.stringify({
    tool: 'playwright',
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
