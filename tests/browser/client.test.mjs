// The dashboard on the JS client (clients/js, served as /repoview-client.js)
// in Debian's chromium against a real stack: a Refresh shows queued, then
// refreshing, then fresh, and the branch pushed meanwhile, with no reload;
// then Redis is killed and started again under the open page, and the page
// recovers by itself: the reconnect note goes, and a branch pushed after
// the restart shows up after another Refresh.
//
// Usage: RV_BIN_DIR=build node tests/browser/client.test.mjs
import { addDemoRepo, git, log, openPage, runTest, startStack, until } from './harness.mjs';

async function main() {
  const { base, env, restartRedis } = await startStack();
  const repoDir = addDemoRepo(env);
  const { page, problems } = await openPage(base + '/#repo=demo');
  const loadedAt = await page.evaluate(() => window.__loadedAt);
  const rows = page.locator('[data-testid="branch-row"]');
  await until('4 branch rows', async () => (await rows.count()) === 4, 20_000);
  const badge = page.locator('[data-repo="demo"] [data-testid="repo-badge"]');
  await until('a fresh badge', async () => (await badge.getAttribute('data-state')) === 'fresh');
  await page.evaluate(() => {
    window.__states = [];
    new MutationObserver(() => {
      const b = document.querySelector('[data-repo="demo"] [data-testid="repo-badge"]');
      if (b && window.__states.at(-1) !== b.dataset.state) window.__states.push(b.dataset.state);
    }).observe(document.body, { subtree: true, childList: true, attributes: true,
      attributeFilter: ['data-state'] });
  });

  const refreshFor = async (branch, count) => {
    git(repoDir, 'branch', '-f', branch, 'main');
    await page.evaluate(() => { window.__states = []; });
    await page.locator('[data-testid="refresh-button"]').click();
    await until(`${count} rows with ${branch}`, async () => (await rows.count()) === count &&
      (await page.locator(`[data-testid="branch-row"][data-branch="${branch}"]`).count()) === 1, 30_000);
    await until('the badge back to fresh', async () => (await badge.getAttribute('data-state')) === 'fresh');
    return page.evaluate(() => window.__states);
  };

  const states = await refreshFor('feature/live', 5);
  log('badge states after Refresh:', states.join(' → '));
  const i = states.indexOf('queued');
  const order = states.slice(i).filter((s, k, a) => a.indexOf(s) === k);
  if (i < 0 || order.join() !== 'queued,refreshing,fresh') {
    throw new Error(`expected queued → refreshing → fresh, saw ${states.join(' → ')}`);
  }

  await restartRedis(2000);
  log('redis restarted');
  await until('the API ready again', async () => (await fetch(base + '/readyz')).ok, 20_000);
  // The refresh button answers 503 while the API is still reconnecting.
  await until('a refresh after the restart', async () => {
    const st = await refreshFor('feature/after-restart', 6).catch(() => null);
    return st !== null;
  }, 60_000, 500);
  await until('no reconnect note', () => page.locator('[data-testid="reconnect-note"]').isHidden(), 15_000);
  if ((await page.evaluate(() => window.__loadedAt)) !== loadedAt) throw new Error('the page reloaded');
  // Requests that failed while Redis was down are logged by chromium; nothing else may be.
  const other = problems.filter((p) => !/status of 503|Failed to fetch|ERR_/.test(p));
  if (other.length) throw new Error('the page logged errors:\n  ' + other.join('\n  '));
}

await runTest('client', main, 120_000);
