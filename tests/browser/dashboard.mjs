// Headless check of the spm-gateway dashboard, driven by a Rust test.
//
//   node tests/browser/dashboard.mjs <url> <screenshot.png> <timeout_ms>
//
// Launches Debian's chromium through playwright-core (never downloads a browser; the path can
// be overridden with CHROMIUM_PATH), opens <url> at 1440x900, records every request to a host
// other than the page's and every console error, waits (up to <timeout_ms>) until the page is
// connected, shows a ladder row and a BREAK call at 687, clicks the first ladder row, waits for
// the detail panel to show it, takes a full-page screenshot, and prints ONE JSON line with what
// it read from the DOM. The Rust test makes the assertions. Exit 1 only when the browser
// cannot be launched (or the arguments are wrong: exit 2).
import { mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { chromium } from 'playwright-core';

const [url, shotArg, timeoutArg] = process.argv.slice(2);
if (!url || !shotArg) {
  process.stderr.write('usage: node dashboard.mjs <url> <screenshot.png> [timeout_ms]\n');
  process.exit(2);
}
const shot = resolve(shotArg);
const timeoutMs = Number(timeoutArg) > 0 ? Number(timeoutArg) : 30000;
const started = Date.now();
const remaining = () => Math.max(1, timeoutMs - (Date.now() - started));

let pageUrl;
try {
  pageUrl = new URL(url);
} catch (e) {
  process.stderr.write(`dashboard.mjs: not a URL: ${url}\n`);
  process.exit(2);
}

let browser;
try {
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM_PATH || '/usr/bin/chromium',
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
    timeout: 60000,
  });
} catch (e) {
  process.stderr.write(`dashboard.mjs: the browser failed to launch: ${e && e.message ? e.message : e}\n`);
  process.exit(1);
}

// Never hang the Rust test: a hard stop well after the given timeout.
const hardStop = setTimeout(() => {
  process.stderr.write('dashboard.mjs: hard timeout, giving up\n');
  process.exit(3);
}, timeoutMs + 90000);
hardStop.unref();

const foreign = [];
const consoleErrors = [];
const notes = [];
const checkUrl = (u) => {
  try {
    const p = new URL(u);
    if (p.protocol === 'data:' || p.protocol === 'blob:' || p.protocol === 'about:') return;
    if (p.host !== pageUrl.host) foreign.push(u);
  } catch (e) {
    foreign.push(String(u));
  }
};

let result = null;
try {
  const context = await browser.newContext({ viewport: { width: 1440, height: 900 }, deviceScaleFactor: 1 });
  context.on('request', (r) => checkUrl(r.url()));
  const page = await context.newPage();
  page.on('websocket', (ws) => checkUrl(ws.url()));
  page.on('console', (m) => {
    if (m.type() === 'error') consoleErrors.push(m.text());
  });
  page.on('pageerror', (e) => consoleErrors.push(`pageerror: ${e && e.message ? e.message : e}`));

  try {
    await page.goto(url, { waitUntil: 'domcontentloaded', timeout: remaining() });
  } catch (e) {
    notes.push(`goto: ${e.message.split('\n')[0]}`);
  }

  const ready = await page
    .waitForFunction(
      () => {
        const c = document.getElementById('conn-state');
        const connected = c && (c.dataset.state === 'live' || c.dataset.state === 'stale');
        return !!(
          connected &&
          document.querySelector('#ladder .level-row') &&
          document.querySelector('#calls .call[data-signal="BREAK"][data-price="687"]')
        );
      },
      null,
      { timeout: remaining(), polling: 100 },
    )
    .then(
      () => true,
      () => false,
    );
  if (!ready) notes.push(`not ready within ${timeoutMs} ms`);

  // Select the first ladder row (a real mouse click; a DOM click if the row keeps moving).
  let clickedId = null;
  const first = page.locator('#ladder .level-row').first();
  if ((await first.count().catch(() => 0)) > 0) {
    clickedId = await first.getAttribute('data-level-id', { timeout: 2000 }).catch(() => null);
    try {
      await first.click({ timeout: 5000 });
    } catch (e) {
      notes.push(`mouse click failed (${e.message.split('\n')[0]}), used a DOM click`);
      clickedId = await page
        .evaluate(() => {
          const r = document.querySelector('#ladder .level-row');
          if (!r) return null;
          r.click();
          return r.dataset.levelId;
        })
        .catch(() => null);
    }
    if (clickedId) {
      await page
        .waitForFunction(
          (id) => {
            const d = document.getElementById('detail');
            const r = document.querySelector('#ladder .level-row.selected');
            return d && d.dataset.levelId === id && r && r.dataset.levelId === id;
          },
          clickedId,
          { timeout: 5000, polling: 50 },
        )
        .catch(() => notes.push(`detail panel did not show ${clickedId}`));
    }
  }

  try {
    mkdirSync(dirname(shot), { recursive: true });
    await page.screenshot({ path: shot, fullPage: true, timeout: 20000 });
  } catch (e) {
    notes.push(`screenshot: ${e.message.split('\n')[0]}`);
  }

  const dom = await page
    .evaluate(() => {
      const text = (el) => (el ? el.textContent.replace(/\s+/g, ' ').trim() : '');
      const numOrNull = (s) => {
        if (s == null || String(s).trim() === '') return null;
        const v = Number(s);
        return Number.isFinite(v) ? v : null;
      };
      const cs = document.getElementById('conn-state');
      const state = cs ? cs.dataset.state || '' : '';
      const count = parseInt(text(document.getElementById('payload-count')), 10);
      const ladder = Array.from(document.querySelectorAll('#ladder .level-row')).map((r) => ({
        id: r.dataset.levelId || '',
        kind: r.dataset.kind || '',
        price: numOrNull(r.dataset.price),
        signal: r.dataset.signal || '',
        confidence: text(r.querySelector('.confidence')),
        score: numOrNull(text(r.querySelector('.score'))),
      }));
      const calls = Array.from(document.querySelectorAll('#calls .call')).map((c) => ({
        signal: c.dataset.signal || '',
        price: numOrNull(c.dataset.price),
        level_id: c.dataset.levelId || '',
        ts: numOrNull(c.dataset.ts),
      }));
      const detail = document.getElementById('detail');
      return {
        connected: state === 'live' || state === 'stale',
        conn_state: state,
        event_time: text(document.getElementById('event-time')),
        payload_count: Number.isFinite(count) ? count : 0,
        ladder,
        calls,
        detail_level_id: detail ? detail.dataset.levelId || '' : '',
        detail_text: detail ? detail.innerText.replace(/\s+/g, ' ').trim() : '',
        ladder_spot_row: !!document.querySelector('#ladder .spot-row'),
      };
    })
    .catch((e) => {
      notes.push(`reading the DOM: ${e.message.split('\n')[0]}`);
      return null;
    });

  result = {
    connected: false,
    conn_state: '',
    event_time: '',
    payload_count: 0,
    ladder: [],
    calls: [],
    detail_level_id: '',
    detail_text: '',
    ladder_spot_row: false,
    ...(dom || {}),
    clicked_level_id: clickedId,
    ready,
    foreign_requests: foreign,
    console_errors: consoleErrors,
    notes,
    screenshot: shot,
  };
} finally {
  await browser.close().catch(() => {});
}

process.stdout.write(JSON.stringify(result) + '\n');
process.exit(0);
