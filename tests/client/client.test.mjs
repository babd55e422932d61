// The JS client (clients/js/repoview-client.js) under Node against a real
// stack: a private redis-server, repoview-api with an admin token and a
// webhook secret, and one repoview-worker from $RV_BIN_DIR. Every answer
// the client receives is also checked against src/api/openapi.json.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { git, makeRepo, startStack, stopAll, tmpDir, until } from '../browser/harness.mjs';
import { makeChecker } from '../openapi/oas.mjs';
import { createClient, RepoviewError, syncState } from '../../clients/js/repoview-client.js';

const TOKEN = 'client-test-admin-token';
const SECRET = 'client-test-webhook-secret';
const { check } = makeChecker();
let stack, client, bare;
const problems = [];

// fetch, with every JSON answer checked against the document (streams are
// checked by the events they yield, below).
async function checkedFetch(url, init = {}) {
  const res = await fetch(url, init);
  const type = res.headers.get('content-type') || '';
  if (!type.startsWith('text/event-stream')) {
    const body = res.status === 204 || res.status === 304 ? '' : await res.clone().text();
    const { errors } = check({ method: init.method || 'GET', url: String(url), status: res.status,
      contentType: type, body });
    problems.push(...errors);
  }
  return res;
}

before(async () => {
  stack = await startStack({ extraEnv: { REPOVIEW_API_TOKEN: TOKEN, REPOVIEW_WEBHOOK_SECRET: SECRET } });
  const src = path.join(tmpDir(), 'src');
  makeRepo(src);
  bare = path.join(tmpDir(), 'demo.git');
  git(tmpDir(), 'clone', '-q', '--bare', src, bare);
  client = createClient({ baseUrl: stack.base, token: () => TOKEN, fetch: checkedFetch });
});

after(async () => {
  await stopAll();
  if (!process.env.RV_KEEP_TMP && tmpDir()) fs.rmSync(tmpDir(), { recursive: true, force: true });
  assert.deepEqual(problems, [], 'answers that do not match openapi.json');
});

const statusOf = (state, id) => state.repos.get(id)?.freshness?.branchSyncStatus;

test('every route through the client', async () => {
  const anonymous = createClient({ baseUrl: stack.base, fetch: checkedFetch });
  await assert.rejects(anonymous.listRepos(), (e) => e instanceof RepoviewError && e.status === 401 &&
    e.code === 'unauthorized');
  assert.equal((await anonymous.healthz()).status, 'ok');
  assert.equal((await client.readyz()).status, 'ready');
  assert.match(await client.metrics(), /^# HELP/m);
  assert.equal((await client.openapi()).openapi, '3.1.0');

  const repo = await client.createRepo({ id: 'demo', url: bare });
  assert.equal(repo.id, 'demo');
  await assert.rejects(client.createRepo({ id: 'demo', url: bare }), (e) => e.code === 'exists');
  await until('the first sync', async () => (await client.getOverview('demo'))?.overview.branches.length === 4, 20_000);
  const first = await client.getOverview('demo');
  assert.equal(await client.getOverview('demo', { etag: first.etag }), null, '304 with the ETag');
  assert.equal((await client.getRepo('demo')).url, bare);
  assert.deepEqual((await client.listAllRepos({ pageSize: 1 })).map((r) => r.id), ['demo']);
  await assert.rejects(client.refresh('demo', 'prs'), (e) => e.code === 'no_github' && e.status === 400);

  const org = await client.createOrg({ id: 'acme', github: 'acme' });
  assert.ok(['queued', 'running'].includes(org.syncStatus), org.syncStatus);
  assert.equal((await client.listOrgs()).orgs.length, 1);
  assert.equal((await client.getOrg('acme')).id, 'acme');
  assert.ok((await client.refreshOrg('acme')).org === 'acme');
  await client.deleteOrg('acme');
  await assert.rejects(client.getOrg('acme'), (e) => e.status === 404);

  const session = await client.getSession();
  assert.equal(session.scope, 'admin');
  assert.equal(session.via, 'bearer');
  const st = await client.createStreamToken();
  assert.ok(st.token && st.expiresIn > 0);
  const viaStreamToken = createClient({ baseUrl: stack.base });
  for await (const ev of viaStreamToken.events({ repos: ['demo'], accessToken: st.token })) {
    assert.equal(ev.event, 'snapshot');
    break;
  }
  const signedIn = await anonymous.signIn(TOKEN);
  assert.equal(signedIn.scope, 'admin');
  await anonymous.signOut();

  assert.ok(Array.isArray((await client.getQueue()).waiting));
  assert.ok(Array.isArray((await client.getWorkers()).workers));
  assert.equal((await client.getDeadLetters({ limit: 5 })).total, 0);
  await assert.rejects(client.retryDeadLetter(0, '0'.repeat(40)), (e) => e.status === 404);
  await assert.rejects(client.dropDeadLetter(0, '0'.repeat(40)), (e) => e.status === 409);
  assert.equal((await client.getStats('5m')).windowSeconds, 300);

  const body = JSON.stringify({ zen: 'hello' });
  const sig = 'sha256=' + crypto.createHmac('sha256', SECRET).update(body).digest('hex');
  assert.deepEqual(await client.postGithubWebhook('ping', crypto.randomUUID(), sig, body), { pong: true });
});

test('watch of one repo: a refresh shows queued, running, idle and the new branch', async () => {
  const seen = [];
  const w = client.watch({ repos: ['demo'], onChange: (s) => {
    const st = statusOf(s, 'demo');
    if (st && seen.at(-1) !== st) seen.push(st);
  } });
  try {
    await until('the overview', () => w.getState().overviews.get('demo')?.branches.length === 4);
    assert.equal(w.getState().repos.get('demo').url, bare, 'the repo as listed');
    assert.equal(w.getState().connected, true);
    git(bare, 'branch', 'feature/new', 'main');
    const r = await client.refresh('demo');
    assert.deepEqual(r.queued, ['branches']);
    await until('the new branch', () =>
      w.getState().overviews.get('demo')?.branches.some((b) => b.name === 'feature/new'), 20_000);
    await until('idle', () => statusOf(w.getState(), 'demo') === 'idle');
    const i = seen.lastIndexOf('queued');
    assert.ok(i >= 0, `queued seen: ${seen}`);
    assert.deepEqual(seen.slice(i).filter((x, k, a) => a.indexOf(x) === k), ['queued', 'running', 'idle'],
      `statuses seen: ${seen}`);
    assert.equal(syncState(w.getState().repos.get('demo').freshness), 'idle');
  } finally {
    w.close();
    await w.closed;
  }
});

test('watch of every repo: the list, a new repo and a removed one', async () => {
  const ctl = new AbortController();
  const w = client.watch({ signal: ctl.signal });
  await until('the list', () => w.getState().loaded && w.getState().repos.has('demo'));
  assert.equal(w.getState().repos.get('demo').url, bare);
  await client.createRepo({ id: 'second', url: bare });
  await until('the new repo', () => w.getState().repos.get('second')?.url === bare);
  await until('its first sync', () => statusOf(w.getState(), 'second') === 'idle', 20_000);
  await client.deleteRepo('second');
  await until('the removal', () => !w.getState().repos.has('second'));
  ctl.abort();
  await w.closed;
  assert.equal(w.getState().connected, false);
});

test('a Redis restart mid-stream: the watches recover and stay correct', async () => {
  const one = client.watch({ repos: ['demo'], minBackoffMs: 100, maxBackoffMs: 1000 });
  const every = client.watch({ minBackoffMs: 100, maxBackoffMs: 1000 });
  try {
    await until('both watches', () => one.getState().overviews.has('demo') && every.getState().repos.has('demo'));
    await stack.restartRedis(1500);
    await until('the API ready again', async () => (await fetch(stack.base + '/readyz')).ok, 20_000);
    git(bare, 'branch', 'feature/after-restart', 'main');
    // The worker may still be reconnecting: a refresh is queued either way.
    await until('a refresh', async () => (await client.refresh('demo')).repo === 'demo', 10_000);
    await until('the branch pushed after the restart', () =>
      one.getState().overviews.get('demo')?.branches.some((b) => b.name === 'feature/after-restart'), 30_000);
    await until('idle in both', () => statusOf(one.getState(), 'demo') === 'idle' &&
      statusOf(every.getState(), 'demo') === 'idle', 20_000);
    assert.ok(one.getState().connected && every.getState().connected, 'both streams are open');
    assert.equal(every.getState().repos.get('demo').version, one.getState().overviews.get('demo').version);
  } finally {
    one.close();
    every.close();
    await Promise.all([one.closed, every.closed]);
  }
});
