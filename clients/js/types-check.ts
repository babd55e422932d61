// Compiled by tsc (tests/client/types.cmake), never run: the declarations
// of repoview-client.d.ts used the way an app uses them.
import { createClient, syncState, RepoviewError } from './repoview-client.js';
import type { WatchState, Overview } from './repoview-client.js';

const client = createClient({ baseUrl: 'http://127.0.0.1:8080', token: () => 'secret' });
async function demo(signal: AbortSignal): Promise<number> {
  const page = await client.listRepos({ limit: 10 });
  const first: string | null = page.nextCursor;
  const got = await client.getOverview(page.repos[0].id, { etag: first });
  const ov: Overview | undefined = got?.overview;
  const w = client.watch({ repos: ['widgets'], signal });
  const stop = w.subscribe((s: WatchState) => {
    for (const [, repo] of s.repos) console.log(repo.id, syncState(repo.freshness));
  });
  stop();
  try {
    await client.refresh('widgets', 'prs');
  } catch (e) {
    if (e instanceof RepoviewError && e.code === 'no_github') return e.status;
  }
  return ov ? ov.branches.length : 0;
}
void demo;
