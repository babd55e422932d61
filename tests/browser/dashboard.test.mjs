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
import fs from 'node:fs';
import path from 'node:path';
import {
  ARTIFACTS, cli, git, launchBrowser, log, makeRepo, runTest, sleep, startStack, tmpDir, until,
  watchProblems,
} from './harness.mjs';

const SHOT = path.join(ARTIFACTS, 'dashboard.png');

async function main() {
  const { base, env } = await startStack();
  const repoDir = path.join(tmpDir(), 'demo');
  makeRepo(repoDir);
  cli(env, 'add', 'demo', '--url', repoDir);
  log('repo added:', repoDir);

  const browser = await launchBrowser();
  const page = browser.pages()[0] || (await browser.newPage());
  page.setDefaultTimeout(15_000);
  const problems = watchProblems(page);

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

await runTest('dashboard', main, 55_000);
