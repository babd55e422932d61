// Every operation of src/api/openapi.json asked of a real stack (a private
// redis-server, repoview-api and one repoview-worker from $RV_BIN_DIR), and
// each answer checked against the document: the routes the C contract
// tests never ask (the dashboard's files, the document itself), real
// worker output (branches of a git repository, not a test's fragment) and
// the events of a stream while a refresh runs.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { cli, git, makeRepo, startStack, stopAll, tmpDir, until } from '../browser/harness.mjs';
import { DOC_PATH, makeChecker, parseEventStream } from './oas.mjs';

const SECRET = 'live-test-secret';
const { check, checkEvents, operations } = makeChecker();
const asked = new Set();
let stack;

after(async () => {
  await stopAll();
  if (!process.env.RV_KEEP_TMP && tmpDir()) fs.rmSync(tmpDir(), { recursive: true, force: true });
});

// Asks the API and checks the answer; returns {status, headers, body, json}.
async function ask(method, p, { body, headers = {}, expect } = {}) {
  const init = { method, headers: { ...headers } };
  if (body !== undefined) {
    init.body = typeof body === 'string' ? body : JSON.stringify(body);
    if (!init.headers['Content-Type']) init.headers['Content-Type'] = 'application/json';
  }
  const res = await fetch(stack.base + p, init);
  const text = method === 'HEAD' ? '' : await res.text();
  const answer = { method, url: stack.base + p, status: res.status,
    contentType: res.headers.get('content-type'), body: text };
  const { op, errors } = check(answer);
  asked.add(op);
  assert.deepEqual(errors, [], `${method} ${p}`);
  if (expect !== undefined) assert.equal(res.status, expect, `${method} ${p}: ${text}`);
  let json;
  try { json = JSON.parse(text); } catch { /* not JSON */ }
  return { status: res.status, headers: res.headers, body: text, json };
}

// Reads a stream until until(events) holds or ms pass; checks it.
async function stream(p, done, ms = 15_000, during = async () => {}) {
  const ctl = new AbortController();
  const res = await fetch(stack.base + p, { signal: ctl.signal });
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type'), /^text\/event-stream/);
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let text = '';
  const end = Date.now() + ms;
  let started = false;
  try {
    while (Date.now() < end) {
      const { value, done: eof } = await Promise.race([reader.read(),
        new Promise((r) => setTimeout(() => r({ value: '' }), 200))]);
      if (eof) break;
      text += value || '';
      // Only whole events count.
      const events = parseEventStream(text.slice(0, text.lastIndexOf('\n\n') + 2));
      if (!started && events.length) { started = true; await during(); }
      if (done(events)) break;
    }
  } finally {
    ctl.abort();
  }
  const events = parseEventStream(text.slice(0, text.lastIndexOf('\n\n') + 2));
  const template = p.startsWith('/v1/events') ? '/v1/events' : '/v1/repos/{id}/events';
  asked.add(`GET ${template}`);
  assert.deepEqual(checkEvents(template, events), [], p);
  return events;
}

test('every operation answers as the OpenAPI document says', { timeout: 100_000 }, async () => {
  stack = await startStack({ extraEnv: { REPOVIEW_WEBHOOK_SECRET: SECRET } });
  const repoDir = path.join(tmpDir(), 'src');
  makeRepo(repoDir);
  git(tmpDir(), 'clone', '-q', '--bare', repoDir, path.join(tmpDir(), 'demo.git'));
  const bare = path.join(tmpDir(), 'demo.git');

  // The document, as served, is the source file.
  const doc = await ask('GET', '/v1/openapi.json', { expect: 200 });
  assert.equal(doc.body, fs.readFileSync(DOC_PATH, 'utf8'));
  await ask('GET', '/v1/openapi.json', { headers: { 'If-None-Match': doc.headers.get('etag') }, expect: 304 });
  await ask('HEAD', '/v1/openapi.json', { expect: 200 });
  for (const f of ['/', '/index.html', '/app.js', '/ops.js', '/app.css', '/repoview-client.js']) {
    const r = await ask('GET', f, { expect: 200 });
    await ask('GET', f, { headers: { 'If-None-Match': r.headers.get('etag') }, expect: 304 });
  }
  await ask('GET', '/healthz', { expect: 200 });
  await ask('GET', '/readyz', { expect: 200 });
  await ask('GET', '/metrics', { expect: 200 });

  // Repos, with a real worker's sync.
  await ask('POST', '/v1/repos', { body: { id: 'demo', url: bare }, expect: 201 });
  await ask('POST', '/v1/repos', { body: { id: 'demo', url: bare }, expect: 409 });
  await ask('POST', '/v1/repos', { body: { id: 'bad id', url: bare }, expect: 400 });
  await ask('POST', '/v1/repos', { body: 'id=x', headers: { 'Content-Type': 'text/plain' }, expect: 415 });
  await until('the first sync', async () =>
    (await ask('GET', '/v1/repos/demo/overview')).json?.branches?.length === 4, 20_000);
  const ov = await ask('GET', '/v1/repos/demo/overview', { expect: 200 });
  await ask('GET', '/v1/repos/demo/overview', { headers: { 'If-None-Match': ov.headers.get('etag') }, expect: 304 });
  await ask('GET', '/v1/repos/nope/overview', { expect: 404 });
  await ask('GET', '/v1/repos?limit=1', { expect: 200 });
  await ask('GET', '/v1/repos?limit=0', { expect: 400 });
  await ask('GET', '/v1/repos/demo', { expect: 200 });
  await ask('POST', '/v1/repos/demo/refresh?kind=prs', { expect: 400 });

  // A repo's stream across a refresh that adds a branch: snapshot, the
  // status changes and the projection.
  const events = await stream('/v1/repos/demo/events',
    (evs) => evs.some((e) => e.event === 'projection') &&
      evs.filter((e) => e.event === 'status').at(-1)?.data.status === 'idle',
    20_000, async () => {
      git(bare, 'branch', 'feature/live', 'main');
      await ask('POST', '/v1/repos/demo/refresh', { expect: 202 });
    });
  assert.equal(events[0].event, 'snapshot');
  const projection = events.find((e) => e.event === 'projection');
  assert.deepEqual(projection.data.changed.branches.added, ['feature/live']);
  // Several repos on one stream, and every repo's (with its hint).
  await stream('/v1/events?repo=demo', (evs) => evs.some((e) => e.event === 'snapshot'));
  await stream('/v1/events', (evs) => evs.length > 0, 3000);
  await ask('GET', '/v1/events?repo=bad%20id', { expect: 400 });

  // Orgs: registered and refreshed (the worker's sync fails without a
  // token, which is an answer of its own).
  await ask('POST', '/v1/orgs', { body: { id: 'acme', github: 'acme' }, expect: 201 });
  await ask('GET', '/v1/orgs', { expect: 200 });
  await ask('GET', '/v1/orgs/acme', { expect: 200 });
  await ask('POST', '/v1/orgs/acme/refresh', { expect: 202 });
  await ask('DELETE', '/v1/orgs/acme', { expect: 204 });
  await ask('GET', '/v1/orgs/acme', { expect: 404 });

  // Webhooks, signed.
  const hook = async (event, payload, expect) => {
    const text = JSON.stringify(payload);
    const sig = 'sha256=' + crypto.createHmac('sha256', SECRET).update(text).digest('hex');
    await ask('POST', '/v1/webhooks/github', { body: text, expect, headers: {
      'X-GitHub-Event': event, 'X-GitHub-Delivery': crypto.randomUUID(), 'X-Hub-Signature-256': sig } });
  };
  await hook('ping', { zen: 'hi' }, 200);
  await hook('push', { ref: 'refs/heads/main', repository: { full_name: 'acme/nothing' } }, 202);

  // Access routes with no tokens configured.
  await ask('GET', '/v1/session', { expect: 200 });
  await ask('POST', '/v1/session', { body: { token: 'x' }, expect: 409 });
  await ask('DELETE', '/v1/session', { expect: 204 });
  await ask('POST', '/v1/stream-tokens', { expect: 409 });

  // The operations views.
  await ask('GET', '/v1/queue', { expect: 200 });
  await ask('GET', '/v1/workers', { expect: 200 });
  await ask('GET', '/v1/stats?window=5m', { expect: 200 });
  await ask('GET', '/v1/deadletters', { expect: 200 });
  const id = '0'.repeat(40);
  await ask('POST', `/v1/deadletters/0/retry?id=${id}`, { expect: 404 });
  await ask('DELETE', `/v1/deadletters/0?id=${id}`, { expect: 409 });

  // The dispatcher's own answers.
  await ask('GET', '/v1/nothing-here', { expect: 404 });
  await ask('PUT', '/v1/repos', { expect: 405 });
  await ask('DELETE', '/v1/repos/demo', { expect: 204 });
  cli(stack.env, 'list');

  const missing = operations.filter((o) => !asked.has(o));
  assert.deepEqual(missing, [], 'operations this test did not ask');
});
