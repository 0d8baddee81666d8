// Drives Debian's chromium (playwright-core, headless) against the zpages
// extension's page for tests/integration/test_zpages.py, which starts the router
// and the load, and checks what this script reports.
//
//   node check.mjs <page url> <metrics url> <screenshot path>
//
// Writes one JSON line per phase to stdout:
//   {"phase":"moving", ...}   while the load runs: the graph as drawn, two reads of
//                              the counters that differ, and a read taken between
//                              two scrapes of /metrics (metrics_before, page,
//                              metrics_after); then the screenshot is saved.
//   {"phase":"steady", ...}   once the test stopped the load (it does so on seeing
//                              the first line) and the counters stood still: the
//                              page's counters, errors and /metrics of that moment.
// Every wait is bounded; any failure exits 1 with a message on stderr.
import { chromium } from 'playwright-core';

const [url, metricsUrl, screenshot] = process.argv.slice(2);
if (!url || !metricsUrl || !screenshot) {
  console.error('usage: node check.mjs <page url> <metrics url> <screenshot path>');
  process.exit(2);
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function scrape() {
  const res = await fetch(metricsUrl, { signal: AbortSignal.timeout(5000) });
  if (!res.ok) throw new Error(`${metricsUrl} answered ${res.status}`);
  return res.text();
}

// Everything the page shows that the test checks, read from the DOM.
function readPage() {
  const cards = [...document.querySelectorAll('section.pipeline')];
  return {
    renders: Number(document.body.dataset.renders || 0),
    time: Number(document.body.dataset.time || 0),
    banner: document.getElementById('banner').hidden ? '' :
      document.getElementById('banner').textContent,
    status: document.getElementById('status').textContent,
    pipelines: cards.map((card) => ({
      id: card.dataset.pipeline,
      queue: {
        size: card.querySelector('h2 .pqueue').dataset.size,
        limit: card.querySelector('h2 .pqueue').dataset.limit,
      },
      // Columns in order, each with its nodes as drawn.
      columns: [...card.querySelectorAll('.graph > .column')].map((col) =>
        [...col.querySelectorAll('.node')].map((n) => ({
          node: n.dataset.node,
          kind: n.dataset.kind,
          shown: n.querySelector('.id').textContent,
          counters: Object.fromEntries([...n.querySelectorAll('dd[data-counter]')].map(
            (dd) => [dd.dataset.counter,
                     { value: Number(dd.dataset.value),
                       text: dd.querySelector('.value').textContent,
                       bad: dd.classList.contains('bad') }])),
          queue: n.querySelector('.queue') ? {
            size: n.querySelector('.queue').dataset.size,
            limit: n.querySelector('.queue').dataset.limit,
            text: n.querySelector('.queue .qtext').textContent,
          } : null,
          errors: [...n.querySelectorAll('ul.errors li')].map((li) => li.textContent),
        }))),
      edges: [...card.querySelectorAll('svg g.edge-label')].map((g) => ({
        from: g.dataset.from,
        to: g.dataset.to,
        rate: g.dataset.rate === '' ? null : Number(g.dataset.rate),
        text: g.querySelector('text').textContent,
      })),
      paths: card.querySelectorAll('svg path.edge').length,
    })),
  };
}

// Every counter on the page as "pipeline|node|counter" -> value.
function counters(page) {
  const out = {};
  for (const p of page.pipelines)
    for (const col of p.columns)
      for (const n of col)
        for (const [k, v] of Object.entries(n.counters)) out[`${p.id}|${n.node}|${k}`] = v.value;
  return out;
}

const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);

async function waitFor(what, fn, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out (${timeoutMs} ms) waiting for ${what}`);
    await sleep(100);
  }
}

const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  args: ['--no-sandbox'],
  headless: true,
  timeout: 30000,
});
let code = 0;
try {
  const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  const consoleErrors = [];
  const outside = [];
  page.on('console', (m) => { if (m.type() === 'error') consoleErrors.push(m.text()); });
  page.on('pageerror', (e) => consoleErrors.push(String(e)));
  page.on('request', (r) => { if (!r.url().startsWith(new URL(url).origin)) outside.push(r.url()); });
  await page.goto(url, { timeout: 15000 });
  const read = () => page.evaluate(readPage);
  // Two renders: the second has rates (two documents to compare).
  await waitFor('two renders of the page', async () => (await read()).renders >= 2, 15000);

  const first = await read();
  const moved = await waitFor('the counters on the page to change', async () => {
    const now = await read();
    return now.renders > first.renders && !same(counters(now), counters(first)) ? now : null;
  }, 10000);

  // A read whose document was fetched after the first scrape: two renders later,
  // the fetch behind the second one started after the first had been drawn.
  const metricsBefore = await scrape();
  const r0 = (await read()).renders;
  await waitFor('two more renders', async () => (await read()).renders >= r0 + 2, 10000);
  const between = await read();
  const metricsAfter = await scrape();
  await page.screenshot({ path: screenshot, fullPage: true });
  console.log(JSON.stringify({
    phase: 'moving', first, moved, between, metrics_before: metricsBefore,
    metrics_after: metricsAfter, screenshot, console_errors: consoleErrors,
    outside_requests: outside,
  }));

  // The test stops the load now; wait until three renders in a row show the same
  // counters, then read the page and /metrics together.
  let last = await read(), stableSince = last.renders;
  const steady = await waitFor('the counters to stand still', async () => {
    const now = await read();
    if (now.renders === last.renders) return null;
    if (!same(counters(now), counters(last))) stableSince = now.renders;
    last = now;
    return now.renders - stableSince >= 3 ? now : null;
  }, 30000);
  const metricsSteady = await scrape();
  const again = await read();
  console.log(JSON.stringify({
    phase: 'steady', page: steady, page_after: again, metrics: metricsSteady,
    console_errors: consoleErrors, outside_requests: outside,
  }));
} catch (e) {
  console.error(`check.mjs: ${e.stack || e}`);
  code = 1;
} finally {
  await browser.close();
}
process.exit(code);
