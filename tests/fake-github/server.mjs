// A fake GitHub GraphQL API for repoview's tests (plain node:http).
//
//   node tests/fake-github/server.mjs [--token T] [--lifetime-minutes N]
//
// Listens on 127.0.0.1, port 0, and prints {"port":N} as its first line on
// stdout. Exits when stdin closes (so a test that dies takes it along) or
// after --lifetime-minutes (default 10).
//
// POST /graphql answers the contract's PR query (it checks the query text,
// modulo whitespace, and the variables owner, name, cursor) for scenario
// repos chosen by owner/name; see SCENARIOS below. PR nodes are built from
// the pull_request payloads of @octokit/webhooks-examples. Every answer
// carries x-ratelimit-limit/remaining/reset/used like GitHub's. With
// --token (or FAKE_GITHUB_TOKEN), "Authorization: bearer <token>" is
// required and anything else gets GitHub's 401.
//
// The GitHub App endpoints, once a test configures an App (below):
//   GET  /repos/{owner}/{repo}/installation, /orgs/{o}/installation (an
//        organisation's only) and /users/{o}/installation (a user's only,
//        the owners the App config lists in "users"): the owner's
//        installation, or 404
//   POST /app/installations/{id}/access_tokens: 201 {"token","expires_at"}
// Both want "Authorization: Bearer <JWT>" signed RS256 with the App's key
// and verified here against its public key (node:crypto): iss the App id,
// iat at most 60 s ahead, exp in the future and at most 600 s after iat;
// anything else gets GitHub's 401. POST /graphql then also takes an
// installation token for repos of the owner it was issued for.
//
// Test control (not GitHub):
//   POST /_control {"repo":"acme/x","scenario":"bad-gateway"}  switch a repo
//   POST /_control {"repo":"acme/x","scenario":"ok","prs":[{...}]}  serve
//        these PRs (fields: number, title, draft, author, headRef, headSha,
//        headRepo, baseRef, isCrossRepository, ci, review, updatedAt)
//   POST /_control {"app":{"id":"42","publicKeyPath":"/tmp/x/pub.pem",
//        "installations":{"acme":101},"tokenLifetimeSeconds":3600,
//        "exchangeStatus":0,"users":["bob"],"selected":{"acme":["widgets"]}}}
//        configure the App (exchangeStatus: answer the exchange with that
//        status instead, e.g. 502; users: owners that are user accounts;
//        selected: owners whose installation covers only those repos, its
//        token getting GitHub's NOT_FOUND for the others)
//   POST /_control {"revokeTokens":true}  installation tokens issued so far
//        are refused (401) from now on
//   POST /_control {"secondaryLimit":{"owner":"acme","retryAfter":N}}  every
//        GraphQL request for that owner's repos gets GitHub's 403 secondary
//        rate limit (with retry-after N when N > 0); {"owner":..,"off":true}
//        lifts it
//   POST /_control {"delayMs":N}       GraphQL answers wait N ms
//   POST /_control {"rateHeaders":false}  no x-ratelimit headers (the
//        budget then comes from GraphQL rateLimit alone)
//   POST /_control {"clearInFlight":true}  forget the most-in-flight counts
//   GET  /_inflight  {"inFlight":{label:n},"max":{label:n}} GraphQL requests
//        being answered per token label ('pat', 'installation:<id>', 'none')
// Each token label has its own budget (limit 5000 for the PAT, 12500 for
// installations), sent in the headers and, when the query asks for it, in
// data.rateLimit; recorded requests carry token, budgetRemaining/Limit.
//   POST /_control {"reset":true}      forget switches and recorded requests
//   GET  /_requests                    requests seen so far (never the token)
//   GET  /_tokens                      installation tokens issued so far, so
//        a test can look for them where they must not be
// Repository listings (GET /installation/repositories, /orgs/{o}/repos,
// /users/{u}/repos) and their controls: see listing.mjs.

import { createServer } from 'node:http';
import { createRequire } from 'node:module';
import { createHash, createPublicKey, randomBytes, verify } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { listing, listingControl, listingOf, listingReset } from './listing.mjs';

const require = createRequire(import.meta.url);
const examples = require('@octokit/webhooks-examples');

function arg(name, fallback) {
  const i = process.argv.indexOf(name);
  return i > 0 && i + 1 < process.argv.length ? process.argv[i + 1] : fallback;
}
const expectedToken = arg('--token', process.env.FAKE_GITHUB_TOKEN || '');
const lifetimeMinutes = Number(arg('--lifetime-minutes', '10'));

// The contract's query; requests must send it (whitespace aside).
const CONTRACT_QUERY = `query($owner: String!, $name: String!, $cursor: String) {
  repository(owner: $owner, name: $name) {
    pullRequests(states: OPEN, first: 100, after: $cursor,
                 orderBy: {field: UPDATED_AT, direction: DESC}) {
      pageInfo { hasNextPage endCursor }
      nodes {
        number title url isDraft state updatedAt
        author { login }
        headRefName headRefOid baseRefName isCrossRepository
        headRepository { nameWithOwner }
        reviewDecision
        commits(last: 1) { nodes { commit { statusCheckRollup { state } } } }
      }
    }
  }
}`;
// The same query asking for the token's budget too (what the workers send).
const BUDGET_QUERY = CONTRACT_QUERY.replace(/\}$/,
  '  rateLimit { cost remaining resetAt limit }\n}');
const squash = (s) => String(s).replace(/\s+/g, ' ').trim();
const PAGE_SIZE = 100;

// ---- PR nodes from the recorded webhook payloads ------------------------

const prPayloads = examples.find((e) => e.name === 'pull_request').examples
  .map((e) => e.pull_request)
  .filter((pr) => pr.state === 'open');
const openTemplate = prPayloads.find((pr) => !pr.draft);
const draftTemplate = prPayloads.find((pr) => pr.draft);

const sha = (seed) => createHash('sha1').update(String(seed)).digest('hex');

// Maps a REST pull_request object (webhook payload) to the GraphQL node the
// contract's query selects, then applies overrides.
function nodeFromPayload(pr, o = {}) {
  const headRepo = pr.head.repo ? pr.head.repo.full_name : null;
  const node = {
    number: pr.number,
    title: pr.title,
    url: pr.html_url,
    isDraft: !!pr.draft,
    state: 'OPEN',
    updatedAt: pr.updated_at,
    author: pr.user ? { login: pr.user.login } : null,
    headRefName: pr.head.ref,
    headRefOid: pr.head.sha,
    baseRefName: pr.base.ref,
    isCrossRepository: headRepo !== pr.base.repo.full_name,
    headRepository: headRepo ? { nameWithOwner: headRepo } : null,
    reviewDecision: null,
    commits: { nodes: [{ commit: { statusCheckRollup: null } }] },
  };
  return Object.assign(node, o);
}

function rollup(state) {
  return { nodes: [{ commit: { statusCheckRollup: state ? { state } : null } }] };
}

const BASE_TIME = Date.parse('2026-11-20T12:00:00Z');
const at = (minutesAgo) => new Date(BASE_TIME - minutesAgo * 60000).toISOString()
  .replace('.000Z', 'Z');

// A PR from a simple spec (used by /_control and the scenarios).
function nodeFromSpec(s, i = 0, repo = 'acme/widgets') {
  const tpl = s.draft ? draftTemplate : openTemplate;
  const n = s.number ?? i + 1;
  const o = {
    number: n,
    title: s.title ?? `${tpl.title} ${n}`,
    url: `https://github.com/${repo}/pull/${n}`,
    isDraft: !!s.draft,
    updatedAt: s.updatedAt ?? at(i),
    author: s.author === null ? null : { login: s.author ?? tpl.user.login },
    headRefName: s.headRef ?? `feature/pr-${n}`,
    headRefOid: s.headSha ?? sha(n),
    baseRefName: s.baseRef ?? 'main',
    isCrossRepository: !!s.isCrossRepository,
    reviewDecision: s.review ?? null,
    commits: s.noCommits ? { nodes: [] } : rollup(s.ci ?? null),
  };
  // By default the head lives in the repo itself, or in a fork of it.
  const head = s.headRepo !== undefined ? s.headRepo
    : s.isCrossRepository ? `forker/${repo.split('/')[1]}` : repo;
  o.headRepository = head === null ? null : { nameWithOwner: head };
  return nodeFromPayload(tpl, o);
}

// 250 PRs: pages of 100, 100, 50. Numbers 250..1, newest first.
function threePages() {
  const nodes = [];
  for (let i = 0; i < 250; i++) {
    const tpl = prPayloads[i % prPayloads.length];
    const n = 250 - i;
    nodes.push(nodeFromPayload(tpl, {
      number: n,
      title: `${tpl.title} ${n}`,
      url: `https://github.com/acme/three-pages/pull/${n}`,
      updatedAt: at(i),
      headRefName: `feature/pr-${n}`,
      headRefOid: sha(n),
    }));
  }
  return nodes;
}

// Every rollup state and review decision, drafts, forks, a deleted fork
// with a ghost author, a PR without commits. Newest first.
function mixed() {
  const specs = [
    { number: 11, ci: 'SUCCESS', review: 'APPROVED', headRepo: 'acme/mixed' },
    { number: 12, ci: 'FAILURE', review: 'CHANGES_REQUESTED', draft: true,
      headRepo: 'acme/mixed' },
    { number: 13, ci: 'PENDING', review: 'REVIEW_REQUIRED',
      headRepo: 'forker/mixed', isCrossRepository: true, author: 'forker',
      headRef: 'main' },
    { number: 14, ci: 'ERROR', review: null, headRepo: 'acme/mixed' },
    { number: 15, ci: 'EXPECTED', review: 'APPROVED', headRepo: 'acme/mixed',
      baseRef: 'release' },
    { number: 16, ci: null, review: null, headRepo: 'acme/mixed' },
    { number: 17, ci: 'SUCCESS', headRepo: null, isCrossRepository: true,
      author: null },
    { number: 18, noCommits: true, headRepo: 'acme/mixed',
      title: 'Ünïcödé — "quoted" \\ title' },
  ];
  return specs.map((s, i) => nodeFromSpec(s, i, 'acme/mixed'));
}

// Scenario per repo name (owner is "acme" in the tests; any owner works).
const SCENARIOS = {
  'three-pages': () => ({ kind: 'ok', nodes: threePages() }),
  mixed: () => ({ kind: 'ok', nodes: mixed() }),
  empty: () => ({ kind: 'ok', nodes: [] }),
  missing: () => ({ kind: 'not-found' }),
  unauthorized: () => ({ kind: 'unauthorized' }),
  forbidden: () => ({ kind: 'forbidden' }),
  'forbidden-retry-after': () => ({ kind: 'forbidden-retry-after' }),
  'forbidden-exhausted': () => ({ kind: 'forbidden-exhausted' }),
  'too-many': () => ({ kind: 'too-many' }),
  'too-many-date': () => ({ kind: 'too-many-date' }),
  'graphql-rate-limited': () => ({ kind: 'graphql-rate-limited' }),
  'bad-gateway': () => ({ kind: 'bad-gateway' }),
  hang: () => ({ kind: 'hang' }),
  truncated: () => ({ kind: 'truncated', nodes: mixed() }),
  malformed: () => ({ kind: 'malformed', nodes: mixed() }),
  'second-page-fails': () => ({ kind: 'second-page-fails', nodes: threePages() }),
  'stuck-cursor': () => ({ kind: 'stuck-cursor', nodes: mixed() }),
  'other-graphql-error': () => ({ kind: 'other-graphql-error' }),
};

let overrides = new Map(); // lower-cased owner/name -> scenario
let requests = [];
// The App: {id, publicKey, installations: Map lower owner -> id,
// tokenLifetimeSeconds, exchangeStatus, users: Set of lower owners,
// selected: Map lower owner -> Set of lower repo names}, or null.
let app = null;
const issued = new Map(); // installation token -> {installation, expiresMs}

function scenarioFor(owner, name) {
  const key = `${owner}/${name}`.toLowerCase();
  if (overrides.has(key)) return overrides.get(key);
  const make = SCENARIOS[String(name).toLowerCase()];
  return make ? make() : { kind: 'not-found' };
}

// ---- HTTP ---------------------------------------------------------------

const started = Math.floor(Date.now() / 1000);
let remaining = 5000;
const hanging = new Set();

// Per-token budgets (by the label tokenLabel gives), for the headers and
// GraphQL rateLimit of answers to that token: {limit, remaining}.
const budgets = new Map();
let current = null; // the budget of the request being answered, or null
let rateHeadersOff = false; // {"rateHeaders":false}: GraphQL rateLimit only
let delayMs = 0;            // {"delayMs":N}: GraphQL answers wait N ms
const secondary = new Map(); // lower owner -> retry-after seconds (0: none)
const inFlight = new Map(); // token label -> requests being answered
const maxInFlight = new Map(); // token label -> most at once

function rateHeaders(extra = {}) {
  if (rateHeadersOff) return { ...extra };
  const lim = current ? current.limit : 5000;
  const rem = current ? current.remaining : remaining;
  return {
    'x-ratelimit-limit': String(lim),
    'x-ratelimit-remaining': String(rem),
    'x-ratelimit-reset': String(started + 3600),
    'x-ratelimit-used': String(lim - rem),
    'x-ratelimit-resource': 'graphql',
    ...extra,
  };
}

// Which budget a request spends: 'pat', 'installation:<id>', 'other' or
// 'none' (never the token itself).
function tokenLabel(who) {
  if (who.kind === 'pat') return 'pat';
  if (who.installation) return `installation:${who.installation}`;
  return who.kind;
}

function send(req, res, status, body, headers = {}) {
  let data = Buffer.from(typeof body === 'string' ? body : JSON.stringify(body));
  const h = { 'content-type': 'application/json; charset=utf-8', ...headers };
  if (/\bgzip\b/.test(req.headers['accept-encoding'] || '') && data.length > 512) {
    data = gzipSync(data);
    h['content-encoding'] = 'gzip';
  }
  h['content-length'] = String(data.length);
  res.writeHead(status, h);
  res.end(data);
}

function page(nodes, cursor) {
  let start = 0;
  if (cursor) {
    const m = /^cursor:(\d+)$/.exec(Buffer.from(cursor, 'base64').toString());
    if (!m) return null;
    start = Number(m[1]);
  }
  const slice = nodes.slice(start, start + PAGE_SIZE);
  const end = start + slice.length;
  return {
    start,
    data: {
      repository: {
        pullRequests: {
          pageInfo: {
            hasNextPage: end < nodes.length,
            endCursor: slice.length
              ? Buffer.from(`cursor:${end}`).toString('base64') : null,
          },
          nodes: slice,
        },
      },
    },
  };
}

// ---- the GitHub App ------------------------------------------------------

const DOCS = 'https://docs.github.com/rest/apps/apps';
const B64URL = /^[A-Za-z0-9_-]+$/;

// Why the request's JWT is refused, or null when it is good.
function jwtProblem(req) {
  const m = /^Bearer (\S+)$/.exec(req.headers.authorization || '');
  if (!m) return 'A JSON web token could not be decoded';
  const parts = m[1].split('.');
  if (parts.length !== 3 || !parts.every((p) => B64URL.test(p)))
    return 'A JSON web token could not be decoded';
  let header;
  let claims;
  try {
    header = JSON.parse(Buffer.from(parts[0], 'base64url').toString());
    claims = JSON.parse(Buffer.from(parts[1], 'base64url').toString());
  } catch {
    return 'A JSON web token could not be decoded';
  }
  if (header.alg !== 'RS256' || header.typ !== 'JWT')
    return "The JWT's alg must be RS256";
  const signed = Buffer.from(`${parts[0]}.${parts[1]}`);
  if (!verify('RSA-SHA256', signed, app.publicKey, Buffer.from(parts[2], 'base64url')))
    return 'A JSON web token could not be decoded (bad signature)';
  req.jwtClaims = claims;
  const now = Math.floor(Date.now() / 1000);
  if (String(claims.iss) !== String(app.id))
    return "'Issuer' claim ('iss') must be the App's id";
  if (!Number.isInteger(claims.iat) || !Number.isInteger(claims.exp))
    return "'iat' and 'exp' must be integers";
  if (claims.iat > now + 60)
    return "'Issued at' claim ('iat') must be an Integer representing a time in the past";
  if (claims.exp <= now) return "'Expiration time' claim ('exp') is in the past";
  if (claims.exp - claims.iat > 600)
    return "'Expiration time' claim ('exp') is too far in the future";
  return null;
}

function appRest(req, res, method, path) {
  const m = /^\/(?:repos\/([^/]+)\/[^/]+|orgs\/([^/]+)|users\/([^/]+))\/installation$/.exec(path);
  const exchange = /^\/app\/installations\/(\d+)\/access_tokens$/.exec(path);
  if (!app || !((m && method === 'GET') || (exchange && method === 'POST'))) return false;
  const rec = { kind: m ? 'installation' : 'access_tokens' };
  requests.push(rec);
  const problem = jwtProblem(req);
  if (req.jwtClaims) rec.jwt = { iat: req.jwtClaims.iat, exp: req.jwtClaims.exp, iss: req.jwtClaims.iss };
  rec.accept = req.headers.accept || null;
  rec.apiVersion = req.headers['x-github-api-version'] || null;
  const reply = (status, body) => {
    rec.status = status;
    send(req, res, status, body, rateHeaders());
  };
  if (problem) {
    rec.jwtError = problem;
    reply(401, { message: problem, documentation_url: DOCS });
    return true;
  }
  if (m) {
    const owner = String(m[1] || m[2] || m[3]).toLowerCase();
    rec.owner = owner;
    rec.endpoint = m[1] ? 'repos' : m[2] ? 'orgs' : 'users';
    const isUser = app.users.has(owner);
    const wrongKind = (m[2] && isUser) || (m[3] && !isUser);
    const id = wrongKind ? undefined : app.installations.get(owner);
    if (!id) reply(404, { message: 'Not Found', documentation_url: DOCS });
    else reply(200, { id, app_id: Number(app.id), account: { login: owner } });
    return true;
  }
  const id = Number(exchange[1]);
  rec.installation = id;
  if (![...app.installations.values()].includes(id)) {
    reply(404, { message: 'Not Found', documentation_url: DOCS });
    return true;
  }
  if (app.exchangeStatus) {
    reply(app.exchangeStatus, { message: 'Server Error', documentation_url: DOCS });
    return true;
  }
  const token = `ghs_${randomBytes(18).toString('hex')}`;
  const expiresMs = (Math.floor(Date.now() / 1000) + app.tokenLifetimeSeconds) * 1000;
  issued.set(token, { installation: id, expiresMs, revoked: false });
  reply(201, {
    token,
    expires_at: new Date(expiresMs).toISOString().replace('.000Z', 'Z'),
    permissions: { contents: 'read', pull_requests: 'read', metadata: 'read' },
    repository_selection: [...app.selected.keys()]
      .some((o) => app.installations.get(o) === id) ? 'selected' : 'all',
  });
  return true;
}

// A repository listing (listing.mjs), spending the bearer's budget unless
// it is answered 304.
function listRepos(req, res, path) {
  const auth = req.headers.authorization || '';
  const bearer = /^(bearer|token) /i.test(auth) ? auth.replace(/^\S+ /, '') : null;
  let who = { kind: 'none' };
  if (bearer && expectedToken && bearer === expectedToken) who = { kind: 'pat' };
  else if (bearer && issued.has(bearer)) {
    const t = issued.get(bearer);
    const live = !t.revoked && t.expiresMs > Date.now();
    who = { kind: live ? 'installation-any' : 'bad-installation', installation: t.installation };
  } else if (bearer) who = { kind: 'other' };
  const label = tokenLabel(who.kind === 'installation-any' ? { installation: who.installation } : who);
  if (!budgets.has(label))
    budgets.set(label, { limit: label === 'pat' ? 5000 : 12500, remaining: 0 });
  current = budgets.get(label);
  if (current.remaining === 0) current.remaining = current.limit;
  const rec = { kind: 'listing', path, token: label, hadAuthorization: auth !== '' };
  requests.push(rec);
  const ownerOf = (id) => {
    if (!app) return undefined;
    for (const [o, i] of app.installations) if (i === id) return o;
    return undefined;
  };
  const query = new URL(req.url, 'http://x').searchParams;
  return listing(req, res, path, query, who, ownerOf, {
    rec,
    docs: 'https://docs.github.com/rest/repos/repos',
    reply: (status, body, headers = {}) => {
      rec.status = status;
      if (status === 200) current.remaining = Math.max(0, current.remaining - 1);
      send(req, res, status, body, rateHeaders(headers));
    },
    notModified: (headers) => {
      res.writeHead(304, rateHeaders(headers));
      res.end();
    },
  });
}

// Who a GraphQL request speaks as: 'pat', 'installation' (of the repo's
// owner, live; unselected when its installation covers selected repos and
// not this one), 'bad-installation' (revoked, expired or another owner's),
// 'other' (an unknown bearer) or 'none'.
function authKind(auth, owner, name) {
  const bearer = /^bearer /i.test(auth) ? auth.slice(7) : null;
  if (!bearer) return { kind: 'none' };
  if (expectedToken && bearer === expectedToken) return { kind: 'pat' };
  const t = issued.get(bearer);
  if (!t) return { kind: 'other' };
  const live = !t.revoked && t.expiresMs > Date.now() && app
    && app.installations.get(String(owner).toLowerCase()) === t.installation;
  const sel = live && app.selected.get(String(owner).toLowerCase());
  const unselected = !!sel && !sel.has(String(name).toLowerCase());
  return {
    kind: live ? 'installation' : 'bad-installation', installation: t.installation, unselected,
  };
}

// Counts the request in flight for its token until its answer is done.
function graphql(req, res, raw) {
  let vars = {};
  try {
    vars = (JSON.parse(raw) || {}).variables || {};
  } catch { /* graphqlNow answers it */ }
  const label = tokenLabel(authKind(req.headers.authorization || '', vars.owner, vars.name));
  const n = (inFlight.get(label) || 0) + 1;
  inFlight.set(label, n);
  maxInFlight.set(label, Math.max(n, maxInFlight.get(label) || 0));
  let done = false;
  const finish = () => {
    if (!done) inFlight.set(label, inFlight.get(label) - 1);
    done = true;
  };
  res.on('close', finish);
  res.on('finish', finish);
  if (delayMs > 0) setTimeout(() => graphqlNow(req, res, raw), delayMs);
  else graphqlNow(req, res, raw);
}

function graphqlNow(req, res, raw) {
  let body;
  try {
    body = JSON.parse(raw);
  } catch {
    return send(req, res, 400, { message: 'Problems parsing JSON' });
  }
  const vars = (body && body.variables) || {};
  const auth = req.headers.authorization || '';
  const who = authKind(auth, vars.owner, vars.name);
  const authOk = who.kind === 'pat' || who.kind === 'installation'
    || (!expectedToken && (who.kind === 'none' || who.kind === 'other'));
  const asked = squash(body && body.query);
  const asksBudget = asked === squash(BUDGET_QUERY);
  const queryMatches = asksBudget || asked === squash(CONTRACT_QUERY);
  const label = tokenLabel(who);
  if (!budgets.has(label))
    budgets.set(label, { limit: label === 'pat' ? 5000 : 12500, remaining: 0 });
  current = budgets.get(label);
  if (current.remaining === 0) current.remaining = current.limit;
  current.remaining = Math.max(0, current.remaining - 1);
  requests.push({
    kind: 'graphql', auth: who.kind, installation: who.installation ?? null,
    unselected: !!who.unselected,
    owner: vars.owner, name: vars.name, cursor: vars.cursor ?? null,
    token: label, budgetRemaining: current.remaining, budgetLimit: current.limit,
    hadAuthorization: auth !== '', authorized: authOk, queryMatches,
    userAgent: req.headers['user-agent'] || null,
    acceptEncoding: req.headers['accept-encoding'] || null,
    contentType: req.headers['content-type'] || null,
  });
  remaining = Math.max(0, remaining - 1);

  const sc = who.unselected ? { kind: 'not-found' } : scenarioFor(vars.owner, vars.name);
  if (!authOk || sc.kind === 'unauthorized')
    return send(req, res, 401, {
      message: 'Bad credentials',
      documentation_url: 'https://docs.github.com/graphql',
    }, rateHeaders());
  if (!queryMatches || typeof vars.owner !== 'string' || typeof vars.name !== 'string')
    return send(req, res, 200, {
      errors: [{ message: 'the query is not the one in the contract' }],
    }, rateHeaders());

  const now = Math.floor(Date.now() / 1000);
  const owner = String(vars.owner).toLowerCase();
  if (secondary.has(owner)) {
    const after = secondary.get(owner);
    return send(req, res, 403, {
      message: 'You have exceeded a secondary rate limit. Please wait a few minutes before you try again.',
      documentation_url: 'https://docs.github.com/graphql/overview/rate-limits-and-node-limits-for-the-graphql-api#secondary-rate-limits',
    }, rateHeaders(after > 0 ? { 'retry-after': String(after) } : {}));
  }
  switch (sc.kind) {
    case 'not-found':
      return send(req, res, 200, {
        data: { repository: null },
        errors: [{
          type: 'NOT_FOUND', path: ['repository'],
          locations: [{ line: 2, column: 3 }],
          message: `Could not resolve to a Repository with the name '${vars.owner}/${vars.name}'.`,
        }],
      }, rateHeaders());
    case 'forbidden':
      return send(req, res, 403, {
        message: 'Resource not accessible by integration',
        documentation_url: 'https://docs.github.com/graphql',
      }, rateHeaders());
    case 'forbidden-retry-after':
      return send(req, res, 403, {
        message: 'You have exceeded a secondary rate limit. Please wait a few minutes before you try again.',
        documentation_url: 'https://docs.github.com/graphql/overview/rate-limits-and-node-limits-for-the-graphql-api#secondary-rate-limits',
      }, rateHeaders({ 'retry-after': '30' }));
    case 'forbidden-exhausted':
      return send(req, res, 403, {
        message: 'API rate limit exceeded for user ID 1.',
        documentation_url: 'https://docs.github.com/graphql/overview/rate-limits-and-node-limits-for-the-graphql-api',
      }, rateHeaders({
        'x-ratelimit-remaining': '0', 'x-ratelimit-reset': String(now + 120),
      }));
    case 'too-many':
      return send(req, res, 429, { message: 'Too Many Requests' },
        rateHeaders({ 'retry-after': '7' }));
    case 'too-many-date':
      // Retry-After as an HTTP date (RFC 9110), 20 s ahead.
      return send(req, res, 429, { message: 'Too Many Requests' },
        rateHeaders({
          'retry-after': new Date((now + 20) * 1000).toUTCString(),
        }));
    case 'graphql-rate-limited':
      return send(req, res, 200, {
        errors: [{
          type: 'RATE_LIMITED',
          message: 'API rate limit already exceeded for user ID 1.',
        }],
      }, rateHeaders({
        'x-ratelimit-remaining': '0', 'x-ratelimit-reset': String(now + 90),
      }));
    case 'bad-gateway':
      res.writeHead(502, { 'content-type': 'text/html', ...rateHeaders() });
      return res.end('<html><body><h1>502 Bad Gateway</h1></body></html>');
    case 'hang':
      hanging.add(res.socket);
      return undefined;
    case 'other-graphql-error':
      return send(req, res, 200, {
        data: null,
        errors: [{ type: 'INTERNAL', message: 'Something went wrong while executing your query.' }],
      }, rateHeaders());
    default:
      break;
  }

  const p = page(sc.nodes, vars.cursor);
  if (!p)
    return send(req, res, 200, {
      errors: [{ message: '`after` cursor is invalid' }],
    }, rateHeaders());
  if (sc.kind === 'second-page-fails' && p.start > 0) {
    res.writeHead(502, { 'content-type': 'text/plain', ...rateHeaders() });
    return res.end('Bad Gateway');
  }
  if (sc.kind === 'stuck-cursor') {
    p.data.repository.pullRequests.pageInfo = {
      hasNextPage: true, endCursor: Buffer.from('cursor:0').toString('base64'),
    };
  }
  if (sc.kind === 'malformed') {
    // A number arrives as a string, as a broken proxy might send it.
    p.data.repository.pullRequests.nodes[2].number = '13';
  }
  if (sc.kind === 'truncated') {
    const text = JSON.stringify({ data: p.data });
    return send(req, res, 200, text.slice(0, Math.floor(text.length / 2)), rateHeaders());
  }
  const data = asksBudget ? {
    ...p.data,
    rateLimit: {
      cost: 1, remaining: current.remaining, limit: current.limit,
      resetAt: new Date((started + 3600) * 1000).toISOString(),
    },
  } : p.data;
  return send(req, res, 200, { data }, rateHeaders());
}

function control(req, res, raw) {
  let c;
  try {
    c = JSON.parse(raw);
  } catch {
    return send(req, res, 400, { message: 'bad JSON' });
  }
  if (c.reset) {
    overrides = new Map();
    requests = [];
    listingReset();
  }
  if (c.clearRequests) requests = [];
  try {
    listingControl(c);
  } catch (e) {
    return send(req, res, 400, { message: e.message });
  }
  if (c.rateHeaders !== undefined) rateHeadersOff = c.rateHeaders === false;
  if (c.delayMs !== undefined) delayMs = Number(c.delayMs);
  if (c.secondaryLimit) {
    const o = String(c.secondaryLimit.owner).toLowerCase();
    if (c.secondaryLimit.off) secondary.delete(o);
    else secondary.set(o, Number(c.secondaryLimit.retryAfter || 0));
  }
  if (c.clearInFlight) maxInFlight.clear();
  if (c.revokeTokens) for (const t of issued.values()) t.revoked = true;
  if (c.app) {
    app = {
      id: String(c.app.id),
      publicKey: createPublicKey(readFileSync(c.app.publicKeyPath)),
      installations: new Map(Object.entries(c.app.installations || {})
        .map(([o, id]) => [o.toLowerCase(), Number(id)])),
      tokenLifetimeSeconds: Number(c.app.tokenLifetimeSeconds || 3600),
      exchangeStatus: Number(c.app.exchangeStatus || 0),
      users: new Set((c.app.users || []).map((o) => String(o).toLowerCase())),
      selected: new Map(Object.entries(c.app.selected || {}).map(([o, names]) => [
        o.toLowerCase(), new Set(names.map((n) => String(n).toLowerCase()))])),
    };
  }
  if (c.repo) {
    const name = String(c.repo).split('/')[1] || '';
    let sc;
    if (c.prs) {
      sc = { kind: c.scenario || 'ok', nodes: c.prs.map((s, i) => nodeFromSpec(s, i, c.repo)) };
    }
    else if (SCENARIOS[c.scenario || name]) sc = SCENARIOS[c.scenario || name]();
    else return send(req, res, 400, { message: `unknown scenario ${c.scenario}` });
    overrides.set(String(c.repo).toLowerCase(), sc);
  }
  return send(req, res, 200, { ok: true });
}

const server = createServer((req, res) => {
  const chunks = [];
  req.on('data', (d) => chunks.push(d));
  req.on('end', () => {
    const raw = Buffer.concat(chunks).toString();
    const path = req.url.split('?')[0];
    if (req.method === 'POST' && (path === '/graphql' || path === '/api/graphql'))
      return graphql(req, res, raw);
    if (req.method === 'POST' && path === '/_control') return control(req, res, raw);
    if (req.method === 'GET' && path === '/_requests') return send(req, res, 200, requests);
    if (req.method === 'GET' && path === '/_inflight')
      return send(req, res, 200, {
        inFlight: Object.fromEntries(inFlight), max: Object.fromEntries(maxInFlight),
      });
    if (req.method === 'GET' && path === '/_tokens') return send(req, res, 200, [...issued.keys()]);
    if (appRest(req, res, req.method, path)) return undefined;
    if (req.method === 'GET' && path === '/_listing')
      return send(req, res, 200, listingOf(new URL(req.url, 'http://x').searchParams.get('owner')));
    if (req.method === 'GET' && listRepos(req, res, path)) return undefined;
    return send(req, res, 404, {
      message: 'Not Found', documentation_url: 'https://docs.github.com/rest',
    });
  });
});

function shutdown() {
  for (const s of hanging) s.destroy();
  process.exit(0);
}

server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`${JSON.stringify({ port: server.address().port })}\n`);
});
process.stdin.on('end', shutdown);
process.stdin.on('error', shutdown);
process.stdin.resume();
setTimeout(shutdown, lifetimeMinutes * 60000).unref();
process.on('SIGTERM', shutdown);
