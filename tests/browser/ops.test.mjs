// Browser test of the operations pages (src/api/static/ops.js): a private
// redis-server, repoview-api and three repoview-workers from the build dir,
// local git repos registered with the CLI, then Debian's chromium through
// playwright-core.
//
// It proves what an operator sees, with no page reload: during a refresh
// storm the Queue page shows jobs waiting and running and then the queue
// draining; the Workers page lists the three workers; the Dead letters page
// shows an entry's error class and time, and its Retry button queues the job
// and takes the entry away; the History page's chart gains syncs as more
// syncs end. Each page's screenshot is kept under <build>/artifacts/ops/,
// after the elements a reader needs (axis labels, legend, rows) were found.
//
// Usage: RV_BIN_DIR=build node tests/browser/ops.test.mjs
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import {
  BIN_DIR, cli, launchBrowser, log, makeRepo, runTest, start, startStack, tmpDir, until,
  watchProblems,
} from './harness.mjs';

const SHOTS = path.join(BIN_DIR, 'artifacts', 'ops');
const NREPOS = 24;

function redis(sock, ...args) {
  return execFileSync('redis-cli', ['-s', sock, ...args], { encoding: 'utf8' }).trim();
}

async function shot(page, name) {
  fs.mkdirSync(SHOTS, { recursive: true });
  const file = path.join(SHOTS, name + '.png');
  await page.screenshot({ path: file, fullPage: true });
  log('screenshot:', file);
}

// A refresh storm: every repo asked for at once through the API, as many
// users or webhooks would.
async function storm(base) {
  const answers = await Promise.all([...Array(NREPOS).keys()].map((i) =>
    fetch(`${base}/v1/repos/r${i}/refresh?kind=branches`, { method: 'POST' })));
  const bad = answers.filter((r) => r.status !== 202);
  if (bad.length) throw new Error(`refresh answered ${bad[0].status}`);
}

async function main() {
  const { base, env, sock } = await startStack({ worker: false,
    extraEnv: { REPOVIEW_LEASE_SECONDS: '10' } });
  const workers = [1, 2, 3].map((n) =>
    start('worker' + n, path.join(BIN_DIR, 'repoview-worker'), [], env));
  for (let i = 0; i < NREPOS; i++) {
    const dir = path.join(tmpDir(), 'r' + i);
    makeRepo(dir);
    cli(env, 'add', 'r' + i, '--url', dir);
  }

  const browser = await launchBrowser();
  const page = browser.pages()[0] || (await browser.newPage());
  page.setDefaultTimeout(15_000);
  const problems = watchProblems(page);
  await page.goto(base + '/#page=workers');
  const loadedAt = await page.evaluate(() => window.__loadedAt);

  // Workers: all three, each with its host and pid.
  await until('three worker rows', async () =>
    (await page.locator('[data-testid="worker-row"]').count()) === 3);
  await shot(page, 'workers');

  // Queue: record what the page shows while a storm runs through it.
  await page.goto(base + '/#page=queue');
  await page.locator('[data-testid="queue-summary"]').waitFor();
  await page.evaluate(() => {
    window.__seen = { waiting: 0, running: 0, summaries: new Set() };
    const look = () => {
      const s = document.querySelector('[data-testid="queue-summary"]');
      if (s) window.__seen.summaries.add(s.textContent);
      window.__seen.waiting = Math.max(window.__seen.waiting,
        document.querySelectorAll('[data-testid="waiting-row"]').length);
      window.__seen.running = Math.max(window.__seen.running,
        document.querySelectorAll('[data-testid="running-row"]').length);
    };
    new MutationObserver(look).observe(document.body, { subtree: true, childList: true });
  });
  // The workers are paused while the storm queues its jobs, so the page
  // has them to show (a local sync takes milliseconds), then let go.
  await until('the first syncs to end', async () =>
    /^0 waiting · 0 running/.test(await page.locator('[data-testid="queue-summary"]').textContent()),
  40_000);
  for (const w of workers) w.kill('SIGSTOP');
  await storm(base);
  try {
    await until('a waiting row', async () => (await page.evaluate(() => window.__seen.waiting)) > 0,
      10_000, 20);
  } catch (e) {
    log('queue page:', await page.locator('#ops').textContent(),
      JSON.stringify(await page.evaluate(() => [...window.__seen.summaries])));
    throw e;
  }
  // A paused worker blocked in BLMOVE still takes a job (Redis moves it),
  // so some show as running: every job of the storm is on the page.
  await until(`${NREPOS} rows waiting or running`, async () =>
    (await page.locator('[data-testid="waiting-row"]').count()) +
    (await page.locator('[data-testid="running-row"]').count()) === NREPOS);
  await shot(page, 'queue');
  for (const w of workers) w.kill('SIGCONT');
  await until('the queue to drain', async () =>
    /^0 waiting · 0 running/.test(await page.locator('[data-testid="queue-summary"]').textContent()),
  40_000);
  const seen = await page.evaluate(() => ({ waiting: window.__seen.waiting,
    running: window.__seen.running, n: window.__seen.summaries.size }));
  log('queue page saw', JSON.stringify(seen));
  // Waiting rows were shown, then the drained queue: at least two states.
  if (seen.n < 2) throw new Error(`the queue page did not move: ${seen.n} distinct summaries`);

  // Dead letters: 120 older entries (no job: they cannot be retried),
  // then an entry with its class and time, which Retry queues.
  const older = Array.from({ length: 120 }, (_, i) => JSON.stringify({ reason: 'malformed',
    at: '2026-12-06T09:00:00.000Z', raw: 'filler ' + i }));
  redis(sock, 'LPUSH', 'rv:deadletter', ...older);
  const job = { v: 1, id: 'j-dead-1', repo: 'r0', kind: 'branches', reason: 'user',
    at: new Date().toISOString(), atMs: Date.now(), attempt: 3 };
  redis(sock, 'LPUSH', 'rv:deadletter', JSON.stringify({ reason: 'attempts exhausted',
    worker: 'host-1-dead', at: '2026-12-07T10:00:00.000Z', job }));
  redis(sock, 'HSET', 'rv:{r0}:meta', 'branch_sync_status', 'error');
  await page.goto(base + '/#page=dead');
  const row = page.locator('[data-testid="dead-row"]');
  await row.first().waitFor();
  const cls = await row.first().locator('[data-testid="error-class"]').textContent();
  const at = await row.first().locator('[data-testid="error-time"]').textContent();
  if (cls !== 'attempts exhausted' || !at.startsWith('2026-12-07 10:00:00')) {
    throw new Error(`dead letter shows ${cls} at ${at}`);
  }
  await shot(page, 'deadletters');
  // A page at a time: 100 of the 121, then the older 21, then back.
  const summary = page.locator('[data-testid="dead-summary"]');
  const pageIs = (text, n) => until(`dead letters ${text}`, async () =>
    (await summary.textContent()).startsWith(text) && (await row.count()) === n);
  await pageIs('1–100 of 121 dead letters', 100);
  if (!(await page.locator('[data-testid="dead-newer"]').isDisabled())) {
    throw new Error('Newer is offered on the first page');
  }
  await page.click('[data-testid="dead-older"]');
  await pageIs('101–121 of 121', 21);
  if (!(await page.locator('[data-testid="dead-older"]').isDisabled())) {
    throw new Error('Older is offered on the last page');
  }
  await page.click('[data-testid="dead-newer"]');
  await pageIs('1–100 of 121', 100);
  await row.first().locator('[data-testid="retry"]').click();
  await page.locator('[data-testid="ops-note"]').waitFor();
  const note = await page.locator('[data-testid="ops-note"]').textContent();
  if (!note.startsWith('Retried r0')) throw new Error(`after Retry: ${note}`);
  await until('the entry to go', async () =>
    (await summary.textContent()).startsWith('1–100 of 120') &&
    !(await row.first().locator('[data-testid="retry"]').count()));

  // History: points for the window, axis labels, legends; it gains syncs.
  await page.goto(base + '/#page=history');
  const hist = page.locator('[data-testid="history"]');
  await hist.waitFor();
  if ((await hist.getAttribute('data-points')) !== '60') throw new Error('not 60 points for 1h');
  for (const id of ['chart-syncs', 'chart-queue', 'chart-duration']) {
    const c = page.locator(`[data-testid="${id}"]`);
    if ((await c.locator('[data-testid="x-label"]').count()) !== 1 ||
        (await c.locator('[data-testid="y-label"]').count()) !== 1 ||
        (await c.locator('text[data-axis="x"]').count()) < 2 ||
        (await c.locator('text[data-axis="y"]').count()) < 2) {
      throw new Error(`${id} lacks axis labels`);
    }
    if ((await page.locator(`[data-testid="${id}-legend"] li`).count()) < 1) {
      throw new Error(`${id} lacks a legend`);
    }
  }
  const dots = await page.locator('[data-testid="chart-syncs"] circle[data-point="done"]').count();
  if (dots < 1) throw new Error('the syncs chart has no point');
  const before = Number(await hist.getAttribute('data-syncs'));
  await storm(base);
  await until('the history to gain syncs', async () =>
    Number(await page.locator('[data-testid="history"]').getAttribute('data-syncs')) >= before + NREPOS / 2,
  30_000, 250);
  await shot(page, 'history');
  log('history: syncs', before, '->', await page.locator('[data-testid="history"]').getAttribute('data-syncs'));

  if ((await page.evaluate(() => window.__loadedAt)) !== loadedAt) {
    throw new Error('the page reloaded');
  }
  if (problems.length) throw new Error('the page logged errors:\n  ' + problems.join('\n  '));
}

await runTest('ops', main, 110_000);
