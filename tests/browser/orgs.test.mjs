// Browser test of the dashboard's org groups: a private redis-server and
// repoview-api from the build dir (no worker, so an org's first sync stays
// queued and nothing needs GitHub), an org and two repos registered with the
// `repoview` CLI, one of them marked as the org's, then Debian's chromium
// through playwright-core.
//
// It proves what a user sees: a heading per org with its sync status, repo
// count and its token's remaining GitHub budget, the org's repos under it and
// the others under "Other"; an org status event changes the heading live, and
// removing the org takes its heading away, all with no page reload.
//
// Usage: RV_BIN_DIR=build node tests/browser/orgs.test.mjs
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import {
  cli, launchBrowser, log, makeRepo, runTest, startStack, tmpDir, until, watchProblems,
} from './harness.mjs';

function redis(sock, ...args) {
  return execFileSync('redis-cli', ['-s', sock, ...args], { encoding: 'utf8' }).trim();
}

// The list as the user reads it: group headings and repo ids, in order.
async function listing(page) {
  return page.locator('#repo-list > li').evaluateAll((lis) => lis.map((li) =>
    li.dataset.testid === 'org-group' ? 'org:' + (li.dataset.org || 'Other') : li.dataset.repo));
}

async function main() {
  const { base, env, sock } = await startStack({ worker: false });
  const one = path.join(tmpDir(), 'one');
  const two = path.join(tmpDir(), 'two');
  makeRepo(one);
  makeRepo(two);
  cli(env, 'org', 'add', 'acme', '--github', 'Acme');
  cli(env, 'add', 'acme-one', '--url', one);
  cli(env, 'add', 'loner', '--url', two);
  // As an org sync would have registered it.
  redis(sock, 'HSET', 'rv:{acme-one}:meta', 'org', 'acme', 'github_id', '11');
  redis(sock, 'HSET', 'rv:gh:budget:pat', 'remaining', '4321', 'limit', '5000',
    'resetAt', String(Date.now() + 3600_000));

  const browser = await launchBrowser();
  const page = browser.pages()[0] || (await browser.newPage());
  page.setDefaultTimeout(15_000);
  const problems = watchProblems(page);
  await page.goto(base + '/');
  const loadedAt = await page.evaluate(() => window.__loadedAt);

  const head = page.locator('[data-testid="org-group"][data-org="acme"]');
  await head.waitFor();
  await until('the grouped list', async () =>
    (await listing(page)).join() === 'org:acme,acme-one,org:Other,loner');
  const status = head.locator('[data-testid="org-status"]');
  if ((await status.getAttribute('data-state')) !== 'queued') {
    throw new Error(`the org is not shown queued: ${await status.getAttribute('data-state')}`);
  }
  const budget = await head.locator('[data-testid="org-budget"]').textContent();
  if (!budget.includes('4321/5000')) throw new Error(`the budget reads ${budget}`);
  const count = await head.locator('[data-testid="org-count"]').textContent();
  if (!/^0 repos$/.test(count)) throw new Error(`the repo count reads ${count}`);
  log('grouped:', (await listing(page)).join(' '));

  // A status event of the org (what a worker's claim publishes) is shown
  // live.
  redis(sock, 'HSET', 'rv:org:{acme}', 'org_sync_status', 'running', 'repo_count', '1');
  redis(sock, 'PUBLISH', 'rv:events', JSON.stringify({
    type: 'status', org: 'acme', kind: 'org', status: 'running',
    meta: { github: 'Acme', installation_id: '', repo_count: '1', org_sync_status: 'running',
      org_sync_at: '', org_sync_error: '' },
  }));
  await until('the org shown running', async () =>
    (await status.getAttribute('data-state')) === 'running');
  await until('its count updated', async () =>
    (await head.locator('[data-testid="org-count"]').textContent()) === '1 repo');

  // Removing the org takes its heading away; its repo goes with it.
  redis(sock, 'HSET', 'rv:org:{acme}:repos', '11', 'acme-one');
  cli(env, 'org', 'remove', 'acme');
  await until('the org and its repo gone', async () =>
    (await listing(page)).join() === 'loner');

  const now = await page.evaluate(() => window.__loadedAt);
  if (now !== loadedAt) throw new Error('the page reloaded');
  if (problems.length) throw new Error('the page logged errors:\n  ' + problems.join('\n  '));
}

await runTest('orgs', main, 55_000);
