// Browser test of the dashboard with 10,000 repos registered: a private
// redis-server and repoview-api (no worker, so nothing syncs), the repos
// registered through POST /v1/repos, then Debian's chromium.
//
// It proves the list stays usable at that size: the page follows every
// nextCursor and knows all 10,000, but draws 200 at a time ("Show more"
// adds 200), the filter box finds one repo among them, clicking it opens
// it, and a live `removed` event still reaches the list.
//
// Usage: RV_BIN_DIR=build node tests/browser/scale.test.mjs
import path from 'node:path';
import {
  launchBrowser, log, makeRepo, runTest, startStack, tmpDir, until, watchProblems,
} from './harness.mjs';

const REPOS = 10_000;
const id = (i) => 'r-' + String(i).padStart(5, '0');

async function register(base, url) {
  let next = 0;
  async function lane() {
    while (next < REPOS) {
      const i = next++;
      const r = await fetch(base + '/v1/repos', {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ id: id(i), url }),
      });
      if (r.status !== 201) throw new Error(`registering ${id(i)}: ${r.status} ${await r.text()}`);
    }
  }
  await Promise.all(Array.from({ length: 8 }, lane));
}

async function items(page) {
  return page.locator('#repo-list [data-testid="repo-item"]').count();
}

async function countText(page) {
  return (await page.locator('[data-testid="repo-list-count"]').textContent()).trim();
}

async function main() {
  const { base } = await startStack({ worker: false });
  const src = path.join(tmpDir(), 'src');
  makeRepo(src);
  const started = Date.now();
  await register(base, src);
  log(`registered ${REPOS} repos in ${Date.now() - started} ms`);

  const browser = await launchBrowser();
  const page = browser.pages()[0] || (await browser.newPage());
  page.setDefaultTimeout(30_000);
  const problems = watchProblems(page);
  await page.goto(base + '/');
  await until('the whole list to be known', async () =>
    (await countText(page)) === `Showing 200 of ${REPOS}`, 60_000);
  if ((await items(page)) !== 200) throw new Error(`${await items(page)} items drawn, not 200`);
  const first = await page.locator('#repo-list [data-testid="repo-item"]').first()
    .getAttribute('data-repo');
  if (first !== id(0)) throw new Error(`the list starts with ${first}`);

  await page.locator('[data-testid="repo-list-show"]').click();
  await until('200 more', async () => (await items(page)) === 400);
  if ((await countText(page)) !== `Showing 400 of ${REPOS}`) {
    throw new Error(`the count reads ${await countText(page)}`);
  }

  // The filter finds one repo among 10,000, whatever was drawn before.
  await page.locator('[data-testid="repo-search"]').fill(id(9876));
  await until('one match', async () => (await items(page)) === 1);
  if ((await countText(page)) !== `1 of ${REPOS} match`) {
    throw new Error(`the count reads ${await countText(page)}`);
  }
  await page.locator(`#repo-list [data-repo="${id(9876)}"] a`).click();
  await until('the repo to open', async () =>
    decodeURIComponent(new URL(page.url()).hash) === `#repo=${id(9876)}`);
  await page.locator('#detail').getByText(id(9876)).first().waitFor();

  // A filter matching nothing says so; clearing it brings the list back.
  await page.locator('[data-testid="repo-search"]').fill('no-such-repo');
  await until('no match', async () => (await items(page)) === 0);
  await page.locator('[data-testid="repo-search"]').fill('');
  await until('the list again', async () => (await items(page)) === 200);

  // Live: a removal (the `removed` event) takes a drawn repo away.
  const r = await fetch(`${base}/v1/repos/${id(3)}`, { method: 'DELETE' });
  if (r.status !== 204 && r.status !== 200) throw new Error(`delete: ${r.status}`);
  await until('the removed repo to go', async () =>
    (await page.locator(`#repo-list [data-repo="${id(3)}"]`).count()) === 0);
  await until('the count to follow', async () =>
    (await countText(page)) === `Showing 200 of ${REPOS - 1}`);

  if (problems.length) throw new Error('page problems:\n' + problems.join('\n'));
}

runTest('scale', main, 240_000);
