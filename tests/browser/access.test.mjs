// Browser test of access control, in Debian's chromium:
//
// - With tokens configured, the dashboard asks to sign in, refuses a wrong
//   token, and after sign-in with a read token shows the repo and its
//   branches and keeps them live through the session cookie (a branch
//   pushed and synced from the CLI appears without a reload). The cookie is
//   HttpOnly: the page's script cannot read it.
// - A page on another origin, with an admin session open in the same
//   browser, cannot create a repo: not with a no-cors text/plain fetch, not
//   with a JSON fetch, not with a form. Nothing is registered or queued.
// - The same page against an API with no token at all is refused the same.
//
// Usage: RV_BIN_DIR=build node tests/browser/access.test.mjs
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import {
  cli, freePort, git, launchBrowser, log, makeRepo, runTest, startStack, tmpDir, until,
  watchProblems,
} from './harness.mjs';

const ADMIN = 'adm-browser-' + crypto.randomBytes(6).toString('hex');
const READER = 'rd-browser-' + crypto.randomBytes(6).toString('hex');

const sha256 = (t) => crypto.createHash('sha256').update(t).digest('hex');

// A page on another origin that tries every way a page can POST across
// origins without the API's consent, then reports what it saw.
function hostilePage(api, fileUrl) {
  const body = (id) => JSON.stringify({ id, url: fileUrl });
  return `<!doctype html><html><body>
<iframe name="sink" id="sink"></iframe>
<form id="f" method="POST" action="${api}/v1/repos" enctype="text/plain" target="sink">
<input type="hidden" name='{"id":"evil-form","url":"${fileUrl}","x":"' value='"}'>
</form>
<script>
(async () => {
  const seen = [];
  try {
    await fetch(${JSON.stringify(api + '/v1/repos')}, {method: 'POST', mode: 'no-cors',
      credentials: 'include', headers: {'Content-Type': 'text/plain'},
      body: ${JSON.stringify(body('evil-nocors'))}});
    seen.push('no-cors sent');
  } catch (e) { seen.push('no-cors failed'); }
  try {
    const r = await fetch(${JSON.stringify(api + '/v1/repos')}, {method: 'POST',
      credentials: 'include', headers: {'Content-Type': 'application/json'},
      body: ${JSON.stringify(body('evil-json'))}});
    seen.push('json answered ' + r.status);
  } catch (e) { seen.push('json blocked'); }
  document.getElementById('sink').addEventListener('load', () => {
    window.__done = seen;
  });
  document.getElementById('f').submit();
})();
</script></body></html>`;
}

async function serveHostile(html) {
  const port = await freePort();
  const srv = http.createServer((req, res) => {
    res.writeHead(200, { 'Content-Type': 'text/html' });
    res.end(html);
  });
  await new Promise((r) => srv.listen(port, '127.0.0.1', r));
  srv.unref();
  return `http://127.0.0.1:${port}`;
}

// Opens the hostile page against api and checks that nothing came of it.
async function attack(browser, api, env, fileUrl) {
  const origin = await serveHostile(hostilePage(api, fileUrl));
  const page = await browser.newPage();
  await page.goto(origin + '/');
  const seen = await until('the hostile page to finish',
    () => page.evaluate(() => window.__done), 15_000);
  log('hostile page against', api, 'saw:', seen.join('; '));
  const list = cli(env, 'list');
  const queue = cli(env, 'queue');
  for (const id of ['evil-nocors', 'evil-json', 'evil-form']) {
    if (list.includes(id)) throw new Error(`a page on another origin created ${id}:\n${list}`);
    if (queue.includes(id)) throw new Error(`a page on another origin queued ${id}:\n${queue}`);
  }
  await page.close();
}

async function main() {
  const tokens = path.join(process.env.TMPDIR || '/tmp', `rv-tokens-${process.pid}`);
  fs.writeFileSync(tokens, `sha256:${sha256(ADMIN)} admin\nsha256:${sha256(READER)} read demo*\n`,
    { mode: 0o600 });
  let stack;
  try {
    stack = await startStack({ extraEnv: { REPOVIEW_TOKENS_FILE: tokens } });
  } finally {
    // The API has read it.
    setTimeout(() => fs.rmSync(tokens, { force: true }), 5000).unref();
  }
  const { base, env } = stack;
  const repoDir = path.join(tmpDir(), 'demo');
  makeRepo(repoDir);
  cli(env, 'add', 'demo', '--url', repoDir);

  const browser = await launchBrowser();
  const page = browser.pages()[0] || (await browser.newPage());
  page.setDefaultTimeout(15_000);
  const problems = watchProblems(page);
  await page.goto(base + '/');

  // Signed out: asked to sign in, nothing shown.
  const authBox = page.locator('[data-testid="auth-message"]');
  await authBox.waitFor({ state: 'visible' });
  if (await page.locator('[data-testid="repo-item"]').count()) {
    throw new Error('repos are shown before sign-in');
  }
  await page.fill('[data-testid="token-input"]', 'not-a-token');
  await page.click('[data-testid="sign-in"]');
  await until('the refusal', async () => /refused/.test(await authBox.textContent()));

  await page.fill('[data-testid="token-input"]', READER);
  await page.click('[data-testid="sign-in"]');
  await authBox.waitFor({ state: 'hidden' });
  const signedIn = await page.locator('[data-testid="signed-in"]').textContent();
  if (!/read/.test(signedIn)) throw new Error(`sign-in not shown: ${signedIn}`);
  if ((await page.evaluate(() => document.cookie)).includes('repoview_session')) {
    throw new Error('the session cookie is readable by the page (not HttpOnly)');
  }
  const item = page.locator('[data-testid="repo-item"][data-repo="demo"]');
  await item.waitFor();
  await item.locator('a').click();
  const rows = page.locator('[data-testid="branch-row"]');
  await until('4 branch rows', async () => (await rows.count()) === 4, 20_000);

  // Live through the cookie: a push synced from the CLI shows up.
  const loadedAt = await page.evaluate(() => window.__loadedAt);
  git(repoDir, 'branch', 'feature/live', 'feature/clean');
  cli(env, 'refresh', 'demo');
  await until('5 branch rows after a sync started elsewhere', async () => (await rows.count()) === 5,
    20_000);
  if ((await page.evaluate(() => window.__loadedAt)) !== loadedAt) {
    throw new Error('the page reloaded instead of updating live');
  }
  if (problems.filter((p) => !/401|403/.test(p)).length) {
    throw new Error('the page logged errors:\n  ' + problems.join('\n  '));
  }

  // An admin session is open in this browser; a page on another origin
  // still cannot create anything.
  const r = await page.evaluate(async (t) => {
    const res = await fetch('/v1/session', { method: 'POST',
      headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ token: t }) });
    return res.status;
  }, ADMIN);
  if (r !== 200) throw new Error(`admin sign-in answered ${r}`);
  await attack(browser, base, env, 'https://example.com/evil.git');

  // And against an API with no tokens at all.
  const open = await startStack({ worker: false });
  await attack(browser, open.base, open.env, 'https://example.com/evil.git');
}

await runTest('access', main, 80_000);
