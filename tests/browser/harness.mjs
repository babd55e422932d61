// What the browser tests share: the processes (a private redis-server, the
// API and a worker from the build dir), Debian's chromium through
// playwright-core, waiting, logs on failure and cleanup. Each test is its
// own Node process, so the state here is the test's.
import { spawn, execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(path.join(here, '..', 'package.json'));

export const BIN_DIR = path.resolve(process.env.RV_BIN_DIR || path.join(here, '..', '..', 'build'));
export const CHROMIUM = process.env.RV_CHROMIUM || '/usr/bin/chromium';
export const ARTIFACTS = path.join(here, 'artifacts');

const children = [];
const tmps = [];
let tmp = null; // of the last stack started
let browser = null;
let testName = 'browser';

export function log(...args) {
  console.log(`[${testName}]`, ...args);
}

export function sleep(ms) {
  return new Promise((r) => setTimeout(r, ms));
}

// Polls fn until it returns a truthy value or ms pass.
export async function until(what, fn, ms = 15_000, every = 100) {
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
export function start(name, cmd, args, env) {
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

// Stops every child and the browser (runTest does it by itself; tests
// under node --test call it when they end).
export async function stopAll() {
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
  for (const dir of tmps) {
    for (const f of fs.readdirSync(dir).filter((x) => x.endsWith('.log'))) {
      const text = fs.readFileSync(path.join(dir, f), 'utf8');
      console.log(`---- ${path.basename(dir)}/${f} (last 40 lines) ----`);
      console.log(text.split('\n').slice(-40).join('\n'));
    }
  }
}

export function freePort() {
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

export function redisPing(sock) {
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

export function git(cwd, ...args) {
  return execFileSync('git', ['-c', 'user.name=Ada Lovelace', '-c', 'user.email=ada@example.com',
    '-c', 'init.defaultBranch=main', '-c', 'commit.gpgsign=false', ...args],
  { cwd, stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8' });
}


// main with a few commits; feature/clean adds a file; feature/conflict edits
// the line main also edits; feature/docs is behind main and touches docs.
export function makeRepo(dir) {
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

// The temp dir of this test (after startStack).
export function tmpDir() {
  return tmp;
}

// Starts redis-server, repoview-api and (unless worker is false) one
// repoview-worker with the URL policy opened to the temp dir only, plus
// extraEnv. Returns {base, env, sock}.
export async function startStack({ extraEnv = {}, worker = true } = {}) {
  for (const bin of ['repoview-api', 'repoview-worker', 'repoview']) {
    if (!fs.existsSync(path.join(BIN_DIR, bin))) {
      throw new Error(`${bin} not found in ${BIN_DIR} (set RV_BIN_DIR to the build dir)`);
    }
  }
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'rv-browser-'));
  tmps.push(tmp);
  const sock = path.join(tmp, 'redis.sock');
  const redisArgs = ['--port', '0', '--unixsocket', sock, '--unixsocketperm', '700',
    '--dir', tmp, '--save', '', '--appendonly', 'no'];
  let redis = start('redis', 'redis-server', redisArgs, process.env);
  await until('redis-server', () => redisPing(sock), 10_000);
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const env = {
    ...process.env,
    REPOVIEW_REDIS_URL: `unix://${sock}`,
    REPOVIEW_LISTEN: `127.0.0.1:${port}`,
    REPOVIEW_DATA_DIR: path.join(tmp, 'data'),
    REPOVIEW_LOG: process.env.REPOVIEW_LOG || 'info',
    // Test repos are bare repos in tmp: the URL policy allows that
    // directory and nothing more.
    REPOVIEW_ALLOW_LOCAL_PATHS: fs.realpathSync(tmp),
  };
  for (const name of ['REPOVIEW_ALLOWED_SCHEMES', 'REPOVIEW_ALLOW_PRIVATE_NETWORKS',
    'REPOVIEW_ALLOWED_HOSTS_REMOTE', 'REPOVIEW_BLOCKED_HOSTS_REMOTE', 'REPOVIEW_API_TOKEN',
    'REPOVIEW_TOKENS_FILE', 'REPOVIEW_READ_OPEN', 'REPOVIEW_CORS_ORIGINS', 'GITHUB_TOKEN'])
    delete env[name];
  Object.assign(env, extraEnv);
  fs.mkdirSync(env.REPOVIEW_DATA_DIR);
  start('api', path.join(BIN_DIR, 'repoview-api'), [], env);
  if (worker) start('worker', path.join(BIN_DIR, 'repoview-worker'), [], env);
  await until('the API to be ready', async () => (await fetch(base + '/readyz')).ok, 15_000);
  // Kills redis-server (SIGKILL, after a SAVE so that its data comes back)
  // and starts it again on the same socket.
  async function restartRedis(downMs = 1000) {
    execFileSync('redis-cli', ['-s', sock, 'SAVE'], { stdio: 'ignore' });
    redis.kill('SIGKILL');
    await until('redis-server to die', () => redis.rvExited, 5000, 20);
    await sleep(downMs);
    redis = start('redis-again', 'redis-server', redisArgs, process.env);
    await until('redis-server again', () => redisPing(sock), 10_000);
  }
  return { base, env, sock, restartRedis };
}

// Runs the repoview CLI against the stack's Redis.
export function cli(env, ...args) {
  return execFileSync(path.join(BIN_DIR, 'repoview'), args,
    { env, stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8' });
}

// A headless chromium with a fresh profile.
export async function launchBrowser() {
  if (!fs.existsSync(CHROMIUM)) {
    throw new Error(`${CHROMIUM} is missing: run scripts/install-deps.sh --browser`);
  }
  const { chromium } = require('playwright-core');
  const profile = path.join(tmps[0], 'chromium-profile');
  browser = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    viewport: { width: 1280, height: 760 },
  });
  return browser;
}

// The demo repo of makeRepo in the stack's temp dir, added with the CLI;
// returns its directory.
export function addDemoRepo(env, id = 'demo') {
  const dir = path.join(tmp, id);
  makeRepo(dir);
  cli(env, 'add', id, '--url', dir);
  return dir;
}

// A page of the browser (launched here) at url, and its problems
// (watchProblems).
export async function openPage(url) {
  const b = await launchBrowser();
  const page = b.pages()[0] || (await b.newPage());
  page.setDefaultTimeout(15_000);
  const problems = watchProblems(page);
  await page.goto(url);
  return { page, problems };
}

// Collects the page's console errors and uncaught exceptions.
export function watchProblems(page) {
  const problems = [];
  page.on('console', (m) => { if (m.type() === 'error') problems.push('console: ' + m.text()); });
  page.on('pageerror', (e) => problems.push('pageerror: ' + e.message));
  return problems;
}

// Runs main under a deadline; on failure shows the processes' logs. Always
// stops everything and exits with the result.
export async function runTest(name, main, deadlineMs) {
  testName = name;
  const timer = setTimeout(async () => {
    console.error(`[${name}] FAIL: the test took longer than`, deadlineMs / 1000, 's');
    showLogs();
    await stopAll();
    process.exit(1);
  }, deadlineMs);
  let failed = false;
  try {
    await main();
    log('ok');
  } catch (e) {
    failed = true;
    console.error(`[${name}] FAIL:`, e.stack || e.message);
    showLogs();
  } finally {
    clearTimeout(timer);
    await stopAll();
    if (!process.env.RV_KEEP_TMP) {
      for (const dir of tmps) fs.rmSync(dir, { recursive: true, force: true });
    }
  }
  process.exit(failed ? 1 : 0);
}
