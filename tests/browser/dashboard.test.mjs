// Browser test of the dashboard, end to end: a private redis-server, a small
// git repo (main and three branches, one of them conflicting), repoview-api
// and one repoview-worker from the build dir ($RV_BIN_DIR), the repo added
// with the `repoview` CLI, then Debian's chromium through playwright-core.
//
// It proves what a user sees: the repo and its branches appear, the
// conflicting branch is marked, Refresh turns the badge to queued/refreshing
// and back to fresh, a branch pushed meanwhile shows up in the table, and all
// of that with no page reload and no console errors.
//
// Usage: RV_BIN_DIR=build node tests/browser/dashboard.test.mjs
// The screenshot goes to tests/browser/artifacts/dashboard.png.
import { spawn, execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(path.join(here, '..', 'package.json'));

const BIN_DIR = path.resolve(process.env.RV_BIN_DIR || path.join(here, '..', '..', 'build'));
const CHROMIUM = process.env.RV_CHROMIUM || '/usr/bin/chromium';
const DEADLINE_MS = 55_000;
const ARTIFACTS = path.join(here, 'artifacts');
const SHOT = path.join(ARTIFACTS, 'dashboard.png');

const children = [];
let tmp = null;
let browser = null;

function log(...args) {
  console.log('[dashboard]', ...args);
}

function sleep(ms) {
  return new Promise((r) => setTimeout(r, ms));
}

// Polls fn until it returns a truthy value or ms pass.
async function until(what, fn, ms = 15_000, every = 100) {
  const end = Date.now() + ms;
  let last;
  while (Date.now() < end) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    await sleep(every);
  }
  throw new Error(`timed out waiting for ${what}${last ? ': ' + last.message : ''}`);
}

// Starts a child whose output goes to a log file in the temp dir, shown when
// the test fails.
function start(name, cmd, args, env) {
  const out = fs.openSync(path.join(tmp, name + '.log'), 'w');
  const child = spawn(cmd, args, { env, stdio: ['ignore', out, out] });
  fs.closeSync(out);
  child.rvName = name;
  child.on('exit', (code, sig) => {
    child.rvExited = true;
    if (!stopping) log(`${name} exited early (code ${code}, signal ${sig})`);
  });
  children.push(child);
  return child;
}

let stopping = false;

async function stopAll() {
  stopping = true;
  if (browser) {
    await Promise.race([browser.close().catch(() => {}), sleep(5000)]);
    browser = null;
  }
  for (const c of children) if (!c.rvExited) c.kill('SIGTERM');
  const end = Date.now() + 3000;
  while (children.some((c) => !c.rvExited) && Date.now() < end) await sleep(50);
  for (const c of children) if (!c.rvExited) c.kill('SIGKILL');
}

function showLogs() {
  if (!tmp) return;
  for (const f of fs.readdirSync(tmp).filter((x) => x.endsWith('.log'))) {
    const text = fs.readFileSync(path.join(tmp, f), 'utf8');
    console.log(`---- ${f} (last 40 lines) ----`);
    console.log(text.split('\n').slice(-40).join('\n'));
  }
}

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

function redisPing(sock) {
  return new Promise((resolve) => {
    const c = net.connect(sock);
    let buf = '';
    c.setTimeout(1000, () => { c.destroy(); resolve(false); });
    c.on('error', () => resolve(false));
    c.on('connect', () => c.write('PING\r\n'));
    c.on('data', (d) => {
      buf += d;
      if (buf.includes('\r\n')) { c.end(); resolve(buf.startsWith('+PONG')); }
    });
  });
}

function git(cwd, ...args) {
  return execFileSync('git', ['-c', 'user.name=Ada Lovelace', '-c', 'user.email=ada@example.com',
    '-c', 'init.defaultBranch=main', '-c', 'commit.gpgsign=false', ...args],
  { cwd, stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8' });
}

// main with a few commits; feature/clean adds a file; feature/conflict edits
// the line main also edits; feature/docs is behind main and touches docs.
function makeRepo(dir) {
  fs.mkdirSync(dir);
  git(dir, 'init', '-q', '-b', 'main');
  const write = (f, text) => {
    fs.mkdirSync(path.dirname(path.join(dir, f)), { recursive: true });
    fs.writeFileSync(path.join(dir, f), text);
  };
  write('README.md', '# demo\n');
  write('src/app.c', 'int main(void) { return 0; }\n');
  git(dir, 'add', '-A');
  git(dir, 'commit', '-q', '-m', 'Initial commit');
  git(dir, 'branch', 'feature/docs');
  git(dir, 'branch', 'feature/conflict');
  git(dir, 'branch', 'feature/clean');

  git(dir, 'checkout', '-q', 'feature/conflict');
  write('src/app.c', 'int main(void) { return 1; }\n');
  git(dir, 'commit', '-q', '-am', 'Return 1 from main');

  git(dir, 'checkout', '-q', 'feature/clean');
  write('src/util.c', 'int add(int a, int b) { return a + b; }\n');
  git(dir, 'add', '-A');
  git(dir, 'commit', '-q', '-m', 'Add util.c');

  git(dir, 'checkout', '-q', 'feature/docs');
  write('docs/guide.md', 'How to use the demo.\n');
  git(dir, 'add', '-A');
  git(dir, 'commit', '-q', '-m', 'Write the guide <b>escaped</b>');

  git(dir, 'checkout', '-q', 'main');
  write('src/app.c', 'int main(void) { return 2; }\n');
  git(dir, 'commit', '-q', '-am', 'Return 2 from main');
}

async function main() {
  for (const bin of ['repoview-api', 'repoview-worker', 'repoview']) {
    if (!fs.existsSync(path.join(BIN_DIR, bin))) {
      throw new Error(`${bin} not found in ${BIN_DIR} (set RV_BIN_DIR to the build dir)`);
    }
  }
  if (!fs.existsSync(CHROMIUM)) {
    throw new Error(`${CHROMIUM} is missing: run scripts/install-deps.sh --browser`);
  }
  const { chromium } = require('playwright-core');

  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'rv-browser-'));
  const sock = path.join(tmp, 'redis.sock');
  start('redis', 'redis-server', ['--port', '0', '--unixsocket', sock, '--unixsocketperm', '700',
    '--dir', tmp, '--save', '', '--appendonly', 'no'], process.env);
  await until('redis-server', () => redisPing(sock), 10_000);

  const repoDir = path.join(tmp, 'demo');
  makeRepo(repoDir);

  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const env = {
    ...process.env,
    REPOVIEW_REDIS_URL: `unix://${sock}`,
    REPOVIEW_LISTEN: `127.0.0.1:${port}`,
    REPOVIEW_DATA_DIR: path.join(tmp, 'data'),
    REPOVIEW_LOG: process.env.REPOVIEW_LOG || 'info',
    // The demo repo is a bare repo in tmp: the URL policy allows that
    // directory and nothing more.
    REPOVIEW_ALLOW_LOCAL_PATHS: fs.realpathSync(tmp),
  };
  for (const name of ['REPOVIEW_ALLOWED_SCHEMES', 'REPOVIEW_ALLOW_PRIVATE_NETWORKS',
    'REPOVIEW_ALLOWED_HOSTS_REMOTE', 'REPOVIEW_BLOCKED_HOSTS_REMOTE']) delete env[name];
  delete env.REPOVIEW_API_TOKEN;
  delete env.GITHUB_TOKEN;
  fs.mkdirSync(env.REPOVIEW_DATA_DIR);
  start('api', path.join(BIN_DIR, 'repoview-api'), [], env);
  start('worker', path.join(BIN_DIR, 'repoview-worker'), [], env);
  await until('the API to be ready', async () => (await fetch(base + '/readyz')).ok, 15_000);

  execFileSync(path.join(BIN_DIR, 'repoview'), ['add', 'demo', '--url', repoDir],
    { env, stdio: ['ignore', 'pipe', 'pipe'] });
  log('repo added:', repoDir);

  const profile = path.join(tmp, 'chromium-profile');
  browser = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    viewport: { width: 1280, height: 760 },
  });
  const page = browser.pages()[0] || (await browser.newPage());
  page.setDefaultTimeout(15_000);
  const problems = [];
  page.on('console', (m) => { if (m.type() === 'error') problems.push('console: ' + m.text()); });
  page.on('pageerror', (e) => problems.push('pageerror: ' + e.message));

  await page.goto(base + '/');
  const loadedAt = await page.evaluate(() => window.__loadedAt);
  if (typeof loadedAt !== 'number') throw new Error('window.__loadedAt is not set by the page');

  // The repo shows up, is selected (the URL remembers it) and its branches
  // arrive from the first sync without a reload.
  const item = page.locator('[data-testid="repo-item"][data-repo="demo"]');
  await item.waitFor();
  await item.locator('a').click();
  await until('#repo=demo in the URL', async () => (await page.evaluate(() => location.hash)) === '#repo=demo');
  const rows = page.locator('[data-testid="branch-row"]');
  await until('4 branch rows', async () => (await rows.count()) === 4, 20_000);
  const badge = item.locator('[data-testid="repo-badge"]');
  await until('a fresh badge', async () => (await badge.getAttribute('data-state')) === 'fresh');

  const names = await rows.evaluateAll((trs) => trs.map((tr) => tr.dataset.branch));
  if (names[0] !== 'main') throw new Error(`the default branch is not first: ${names}`);
  for (const b of ['feature/clean', 'feature/conflict', 'feature/docs']) {
    if (!names.includes(b)) throw new Error(`branch ${b} is missing: ${names}`);
  }
  const conflicting = await page.locator('[data-testid="branch-row"][data-conflicts="true"]')
    .evaluateAll((trs) => trs.map((tr) => tr.dataset.branch));
  if (conflicting.join() !== 'feature/conflict') {
    throw new Error(`expected only feature/conflict to conflict, got ${conflicting}`);
  }
  const files = await page.locator('[data-branch="feature/conflict"] [data-testid="conflict-badge"]')
    .getAttribute('title');
  if (!files || !files.includes('src/app.c')) throw new Error(`conflict files not shown: ${files}`);
  const subject = await page.locator('[data-branch="feature/docs"]').textContent();
  if (!subject.includes('Write the guide <b>escaped</b>')) {
    throw new Error(`the commit subject is not shown as text: ${subject}`);
  }

  // Record every state the badge takes, so a fast worker cannot hide the
  // transient queued/refreshing states from the polling below.
  await page.evaluate(() => {
    window.__states = [];
    const seen = () => {
      const b = document.querySelector('[data-repo="demo"] [data-testid="repo-badge"]');
      if (b) window.__states.push(b.dataset.state);
    };
    new MutationObserver(seen).observe(document.body, { subtree: true, childList: true,
      attributes: true, attributeFilter: ['data-state'] });
  });

  // A branch pushed since the last sync appears after Refresh.
  git(repoDir, 'branch', 'feature/new', 'feature/clean');
  await page.locator('[data-testid="refresh-button"]').click();
  await until('the badge to leave fresh', async () =>
    (await page.evaluate(() => window.__states.some((s) => s === 'queued' || s === 'refreshing'))),
  10_000, 20);
  await until('5 branch rows after the refresh', async () => (await rows.count()) === 5, 20_000);
  await until('the badge back to fresh', async () => (await badge.getAttribute('data-state')) === 'fresh');
  const states = await page.evaluate(() => window.__states);
  log('badge states after Refresh:', [...new Set(states)].join(' → '));

  // A reload shortly after the click would only show after the data landed.
  await sleep(750);
  const after = await page.evaluate(() => [window.__loadedAt, Array.isArray(window.__states)]);
  if (after[0] !== loadedAt || !after[1]) throw new Error('the page reloaded during the refresh');
  if (!(await page.locator('[data-testid="reconnect-note"]').isHidden())) {
    throw new Error('the reconnect note is showing on a healthy connection');
  }
  const counts = await page.locator('[data-testid="counts"]').textContent();
  if (!/5\s*branches/.test(counts) || !/1\s*conflicting/.test(counts)) {
    throw new Error(`counts are wrong: ${counts}`);
  }

  fs.mkdirSync(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: SHOT, fullPage: true });
  log('screenshot:', SHOT);

  if (problems.length) throw new Error('the page logged errors:\n  ' + problems.join('\n  '));
}

const timer = setTimeout(async () => {
  console.error('[dashboard] FAIL: the test took longer than', DEADLINE_MS / 1000, 's');
  showLogs();
  await stopAll();
  process.exit(1);
}, DEADLINE_MS);

let failed = false;
try {
  await main();
  log('ok');
} catch (e) {
  failed = true;
  console.error('[dashboard] FAIL:', e.stack || e.message);
  showLogs();
} finally {
  clearTimeout(timer);
  await stopAll();
  if (tmp && !process.env.RV_KEEP_TMP) fs.rmSync(tmp, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);
