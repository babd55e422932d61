// repoview-client: the JSON API of repoview (src/api/openapi.json) for
// browsers and Node 20+, with no dependencies, and watch(), which keeps an
// app's picture of its repos current over the server-sent events.
//
// The streams are read with fetch, not EventSource, so that a bearer token
// can go in a header, an AbortSignal ends them, and Node needs nothing
// more. The dashboard (src/api/static/app.js) is built on this module; the
// API serves it as /repoview-client.js.

/** @typedef {'idle' | 'queued' | 'running' | 'error'} SyncStatus */
/** @typedef {{code: string, message: string, at?: string | null}} SyncError */
/**
 * @typedef {object} Freshness
 * @property {SyncStatus} branchSyncStatus
 * @property {string | null} branchSyncAt
 * @property {SyncError | null} branchSyncError
 * @property {SyncStatus} prSyncStatus
 * @property {string | null} prSyncAt
 * @property {SyncError | null} prSyncError
 * @property {boolean} stale
 * @property {number} staleAfterSeconds
 */
/**
 * @typedef {object} Repo
 * @property {string} id
 * @property {string} [url] absent until the repo list or GET /v1/repos/{id} said it
 * @property {string | null} [github]
 * @property {string | null} [defaultBranch]
 * @property {string} [org]
 * @property {number} version
 * @property {Freshness} freshness
 */
/** @typedef {{repos: Repo[], nextCursor: string | null}} RepoList */
/**
 * @typedef {object} RepoCreate
 * @property {string} id
 * @property {string} url
 * @property {string | null} [github]
 * @property {string | null} [defaultBranch]
 * @property {number | null} [syncIntervalSeconds]
 */
/**
 * @typedef {object} PullRequest
 * @property {number} number
 * @property {string} title
 * @property {string} state
 * @property {boolean} draft
 * @property {string} url
 * @property {string | null} author
 * @property {string} headRef
 * @property {string | null} headRepo
 * @property {string} baseRef
 * @property {boolean} isCrossRepository
 * @property {string | null} ciStatus
 * @property {string | null} reviewDecision
 * @property {string} updatedAt
 */
/**
 * @typedef {object} Branch
 * @property {string} name
 * @property {boolean} isDefault
 * @property {string} sha
 * @property {number} ahead
 * @property {number} behind
 * @property {boolean} conflicts
 * @property {string[]} conflictFiles
 * @property {{files: number, additions: number, deletions: number}} diffStat
 * @property {{author: string, date: string, subject: string}} commit
 * @property {string} firstSeenAt
 * @property {Partial<PullRequest> | null} pr
 */
/**
 * @typedef {object} Overview
 * @property {{id: string, url: string, github: string | null, defaultBranch: string | null, org?: string}} repo
 * @property {number} version
 * @property {Freshness} freshness
 * @property {{branches: number, conflicting: number, openPullRequests: number}} counts
 * @property {boolean} [truncated]
 * @property {Branch[]} branches
 * @property {PullRequest[]} pullRequests
 */
/**
 * @typedef {object} RefreshResult
 * @property {string} repo
 * @property {('branches' | 'prs')[]} queued
 * @property {('branches' | 'prs')[]} coalesced
 * @property {Freshness} freshness
 */
/**
 * @typedef {object} Org
 * @property {string} id
 * @property {string} github
 * @property {number | null} installationId
 * @property {number} repoCount
 * @property {SyncStatus} syncStatus
 * @property {string | null} syncAt
 * @property {SyncError | null} syncError
 * @property {{remaining: number | null, limit: number | null, resetAt: string | null} | null} [budget]
 */
/** @typedef {{org: string, queued: 'org'[], coalesced: 'org'[]}} OrgRefreshResult */
/**
 * @typedef {object} Session
 * @property {'read' | 'write' | 'admin'} [scope]
 * @property {'bearer' | 'cookie' | 'stream-token'} [via]
 * @property {string[]} repos
 * @property {boolean} tokensConfigured
 * @property {boolean} readOpen
 */
/** @typedef {{token: string, expiresAt: number, expiresIn: number}} StreamToken */
/** @typedef {Record<string, unknown>} Json */
/** @typedef {{waiting: Json[], waitingTotal: number, running: Json[], deadLetters: number}} Queue */
/** @typedef {{workers: Json[]}} Workers */
/** @typedef {{deadLetters: {index: number, id: string, entry: Json}[], total: number, nextCursor: string | null}} DeadLetters */
/** @typedef {{retried: number, outcome: 'queued' | 'coalesced', kind: string, job?: Json}} DeadLetterRetry */
/** @typedef {{windowSeconds: number, points: Json[], githubBudget: Json[]}} Stats */
/** @typedef {{queued: Json[], ignored?: string} | {pong: true}} WebhookResult */
/**
 * One server-sent event: its name, its id and its data (parsed JSON).
 * @typedef {object} StreamEvent
 * @property {string} event snapshot, status, projection, removed, snapshot-needed, org, org-removed
 * @property {string} [id]
 * @property {any} data
 */

/**
 * @typedef {object} ClientOptions
 * @property {string} [baseUrl] the API's origin, e.g. "http://127.0.0.1:8080"; "" (the default) is the page's own
 * @property {string | (() => string | null | undefined | Promise<string | null | undefined>) | null} [token]
 *   a bearer token (issue 9), or a function giving the current one; without one, the browser's session cookie goes
 * @property {RequestCredentials} [credentials] fetch's credentials (default "same-origin": the dashboard's cookie)
 * @property {typeof fetch} [fetch] another fetch (tests, proxies)
 */

/** An answer that is not the one asked for: its status and the API's error code. */
export class RepoviewError extends Error {
  /**
   * @param {number} status HTTP status, 0 when the API could not be reached
   * @param {string} code the API's error code ("not_found"), or "network"
   * @param {string} message
   * @param {unknown} [body]
   */
  constructor(status, code, message, body) {
    super(message);
    this.name = 'RepoviewError';
    this.status = status;
    this.code = code;
    this.body = body;
  }
}

/**
 * The single state a repo is in, for a badge: error, queued or running when
 * a kind is, else stale or idle.
 * @param {Freshness | undefined | null} f
 * @returns {'error' | 'running' | 'queued' | 'stale' | 'idle'}
 */
export function syncState(f) {
  if (!f) return 'idle';
  const s = [f.branchSyncStatus, f.prSyncStatus];
  if (s.includes('error')) return 'error';
  if (s.includes('running')) return 'running';
  if (s.includes('queued')) return 'queued';
  return f.stale ? 'stale' : 'idle';
}

/**
 * Parses a text/event-stream from a stream of text chunks. A generator of
 * events; `retry:` values go to onRetry.
 * @param {AsyncIterable<string>} chunks
 * @param {(ms: number) => void} [onRetry]
 * @returns {AsyncGenerator<StreamEvent>}
 */
export async function* parseEvents(chunks, onRetry) {
  let buf = '';
  for await (const chunk of chunks) {
    buf += chunk;
    let end;
    while ((end = buf.search(/\r?\n\r?\n/)) >= 0) {
      const ev = parseEventBlock(buf.slice(0, end), onRetry);
      buf = buf.slice(end + (buf[end] === '\r' ? 4 : 2));
      if (ev) yield ev;
    }
  }
}

/**
 * One event of a text/event-stream: the lines between two blank lines.
 * null for a block without data (a comment, a `retry:`).
 * @param {string} block
 * @param {(ms: number) => void} [onRetry]
 * @returns {StreamEvent | null}
 */
export function parseEventBlock(block, onRetry) {
  /** @type {string | null} */
  let data = null;
  let event = 'message';
  /** @type {string | undefined} */
  let id;
  for (const line of block.split(/\r?\n/)) {
    if (line === '' || line.startsWith(':')) continue;
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
    if (field === 'event') event = value;
    else if (field === 'id') id = value;
    else if (field === 'data') data = data === null ? value : data + '\n' + value;
    else if (field === 'retry' && /^\d+$/.test(value) && onRetry) onRetry(Number(value));
  }
  if (data === null) return null;
  let parsed;
  try { parsed = JSON.parse(data); } catch { parsed = data; }
  return id === undefined ? { event, data: parsed } : { event, id, data: parsed };
}

/** @param {Record<string, string | number | null | undefined>} q */
function query(q) {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(q)) if (v !== undefined && v !== null) p.append(k, String(v));
  const s = p.toString();
  return s ? '?' + s : '';
}

const enc = encodeURIComponent;

/**
 * A client of one repoview API.
 * @param {ClientOptions} [options]
 */
export function createClient(options = {}) {
  const base = (options.baseUrl || '').replace(/\/+$/, '');
  const doFetch = options.fetch || globalThis.fetch.bind(globalThis);
  const credentials = options.credentials || 'same-origin';

  /** @returns {Promise<Record<string, string>>} */
  async function authHeaders() {
    const t = typeof options.token === 'function' ? await options.token() : options.token;
    return t ? { Authorization: 'Bearer ' + t } : {};
  }

  /**
   * One request. Resolves with the answer when its status is one of ok;
   * rejects with a RepoviewError otherwise.
   * @param {string} method
   * @param {string} path
   * @param {{body?: unknown, headers?: Record<string, string>, ok?: number[], signal?: AbortSignal, raw?: boolean}} [o]
   * @returns {Promise<{status: number, headers: Headers, data: any}>}
   */
  async function request(method, path, o = {}) {
    /** @type {Record<string, string>} */
    const headers = { Accept: 'application/json', ...(await authHeaders()), ...(o.headers || {}) };
    /** @type {RequestInit} */
    const init = { method, headers, credentials, cache: 'no-store', signal: o.signal };
    if (o.body !== undefined) {
      headers['Content-Type'] = headers['Content-Type'] || 'application/json';
      init.body = typeof o.body === 'string' ? o.body : JSON.stringify(o.body);
    }
    let res;
    try {
      res = await doFetch(base + path, init);
    } catch (e) {
      if (o.signal?.aborted) throw e;
      throw new RepoviewError(0, 'network', 'cannot reach the API: ' + (e instanceof Error ? e.message : String(e)));
    }
    const text = res.status === 204 || res.status === 304 ? '' : await res.text();
    let data = null;
    if (!o.raw && text) {
      try { data = JSON.parse(text); } catch { data = null; }
    }
    const ok = o.ok || [200];
    if (!ok.includes(res.status)) {
      const err = data && typeof data === 'object' && data.error ? data.error : {};
      throw new RepoviewError(res.status, typeof err.code === 'string' ? err.code : 'http_' + res.status,
        typeof err.message === 'string' ? err.message : `${method} ${path}: HTTP ${res.status}`, data);
    }
    return { status: res.status, headers: res.headers, data: o.raw ? text : data };
  }
  /** @param {string} path @param {{signal?: AbortSignal}} [o] */
  const get = async (path, o) => (await request('GET', path, o)).data;

  /**
   * The events of one stream (GET /v1/repos/{id}/events, or /v1/events
   * for several repos or, with none, every repo). Ends when the server ends
   * the stream or signal aborts; rejects with a RepoviewError when the
   * stream cannot start.
   * @param {{repos?: string[], signal?: AbortSignal, lastEventId?: string, onOpen?: () => void, onRetry?: (ms: number) => void, accessToken?: string}} [o]
   * @returns {AsyncGenerator<StreamEvent>}
   */
  async function* events(o = {}) {
    const repos = o.repos || [];
    const params = new URLSearchParams();
    for (const r of repos) params.append('repo', r);
    if (o.accessToken) params.append('access_token', o.accessToken);
    const q = params.toString();
    const path = '/v1/events' + (q ? '?' + q : '');
    /** @type {Record<string, string>} */
    const headers = { Accept: 'text/event-stream', ...(await authHeaders()) };
    if (o.lastEventId) headers['Last-Event-ID'] = o.lastEventId;
    let res;
    try {
      res = await doFetch(base + path, { headers, credentials, cache: 'no-store', signal: o.signal });
    } catch (e) {
      if (o.signal?.aborted) return;
      throw new RepoviewError(0, 'network', 'cannot reach the API: ' + (e instanceof Error ? e.message : String(e)));
    }
    if (res.status !== 200 || !res.body) {
      const text = await res.text().catch(() => '');
      let data = null;
      try { data = JSON.parse(text); } catch { /* not JSON */ }
      const err = data?.error || {};
      throw new RepoviewError(res.status, err.code || 'http_' + res.status, err.message || `GET ${path}: HTTP ${res.status}`, data);
    }
    if (o.onOpen) o.onOpen();
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
    const chunks = {
      async* [Symbol.asyncIterator]() {
        try {
          for (;;) {
            const { value, done } = await reader.read();
            if (done) return;
            yield value;
          }
        } catch (e) {
          if (!o.signal?.aborted) throw new RepoviewError(0, 'network', 'the stream broke: ' + (e instanceof Error ? e.message : String(e)));
        } finally {
          reader.cancel().catch(() => {});
        }
      },
    };
    yield* parseEvents(chunks, o.onRetry);
  }

  const client = {
    request,
    events,

    /** @param {{limit?: number, cursor?: string | null, org?: string, q?: string, signal?: AbortSignal}} [o] @returns {Promise<RepoList>} */
    listRepos: (o = {}) => get('/v1/repos' + query({ limit: o.limit, cursor: o.cursor, org: o.org, q: o.q }), o),
    /**
     * Every page of the list, following nextCursor.
     * @param {{pageSize?: number, org?: string, q?: string, signal?: AbortSignal}} [o]
     * @returns {Promise<Repo[]>}
     */
    async listAllRepos(o = {}) {
      /** @type {Repo[]} */
      const all = [];
      /** @type {string | null} */
      let cursor = null;
      do {
        /** @type {RepoList} */
        const page = await client.listRepos({ limit: o.pageSize || 1000, cursor, org: o.org, q: o.q, signal: o.signal });
        all.push(...page.repos);
        cursor = page.nextCursor;
      } while (cursor);
      return all;
    },
    /** @param {RepoCreate} repo @returns {Promise<Repo>} */
    createRepo: async (repo) => (await request('POST', '/v1/repos', { body: repo, ok: [201] })).data,
    /** @param {string} id @returns {Promise<Repo>} */
    getRepo: (id) => get('/v1/repos/' + enc(id)),
    /** @param {string} id @returns {Promise<void>} */
    deleteRepo: async (id) => { await request('DELETE', '/v1/repos/' + enc(id), { ok: [204] }); },
    /**
     * The overview; with etag, null when it did not change (304).
     * @param {string} id
     * @param {{etag?: string | null, signal?: AbortSignal}} [o]
     * @returns {Promise<{overview: Overview, etag: string | null} | null>}
     */
    async getOverview(id, o = {}) {
      const r = await request('GET', '/v1/repos/' + enc(id) + '/overview',
        { headers: o.etag ? { 'If-None-Match': o.etag } : {}, ok: [200, 304], signal: o.signal });
      return r.status === 304 ? null : { overview: r.data, etag: r.headers.get('ETag') };
    },
    /** @param {string} id @param {'all' | 'branches' | 'prs'} [kind] @returns {Promise<RefreshResult>} */
    refresh: async (id, kind = 'all') =>
      (await request('POST', '/v1/repos/' + enc(id) + '/refresh' + query({ kind }), { ok: [202] })).data,

    /** @returns {Promise<{orgs: Org[]}>} */
    listOrgs: () => get('/v1/orgs'),
    /** @param {{id: string, github: string}} org @returns {Promise<Org>} */
    createOrg: async (org) => (await request('POST', '/v1/orgs', { body: org, ok: [201] })).data,
    /** @param {string} id @returns {Promise<Org>} */
    getOrg: (id) => get('/v1/orgs/' + enc(id)),
    /** @param {string} id @returns {Promise<void>} */
    deleteOrg: async (id) => { await request('DELETE', '/v1/orgs/' + enc(id), { ok: [204] }); },
    /** @param {string} id @returns {Promise<OrgRefreshResult>} */
    refreshOrg: async (id) => (await request('POST', '/v1/orgs/' + enc(id) + '/refresh', { ok: [202] })).data,

    /** @returns {Promise<Session>} */
    getSession: () => get('/v1/session'),
    /** Signs in: the API sets its session cookie (browsers). @param {string} token @returns {Promise<Session>} */
    signIn: async (token) => (await request('POST', '/v1/session', { body: { token } })).data,
    /** @returns {Promise<void>} */
    signOut: async () => { await request('DELETE', '/v1/session', { ok: [204] }); },
    /** @returns {Promise<StreamToken>} */
    createStreamToken: async () => (await request('POST', '/v1/stream-tokens', { ok: [201] })).data,

    /** @returns {Promise<Queue>} */
    getQueue: () => get('/v1/queue'),
    /** @returns {Promise<Workers>} */
    getWorkers: () => get('/v1/workers'),
    /** @param {{limit?: number, cursor?: string | null}} [o] @returns {Promise<DeadLetters>} */
    getDeadLetters: (o = {}) => get('/v1/deadletters' + query({ limit: o.limit, cursor: o.cursor })),
    /** @param {number} n @param {string} id @returns {Promise<DeadLetterRetry>} */
    retryDeadLetter: async (n, id) =>
      (await request('POST', `/v1/deadletters/${n}/retry` + query({ id }), { ok: [202] })).data,
    /** @param {number} n @param {string} id @returns {Promise<void>} */
    dropDeadLetter: async (n, id) => { await request('DELETE', `/v1/deadletters/${n}` + query({ id }), { ok: [204] }); },
    /**
     * @param {string} [window] from "5m" to "24h"
     * @returns {Promise<Stats>}
     */
    getStats: (window) => get('/v1/stats' + query({ window })),

    /**
     * Sends a GitHub webhook delivery as GitHub would (for tools and tests).
     * @param {string} event X-GitHub-Event
     * @param {string} delivery X-GitHub-Delivery
     * @param {string} signature X-Hub-Signature-256 ("sha256=<hex>") of body
     * @param {string} body the raw JSON
     * @returns {Promise<WebhookResult>}
     */
    postGithubWebhook: async (event, delivery, signature, body) =>
      (await request('POST', '/v1/webhooks/github', { body, ok: [200, 202], headers:
        { 'X-GitHub-Event': event, 'X-GitHub-Delivery': delivery, 'X-Hub-Signature-256': signature } })).data,

    /** @returns {Promise<{status: 'ok'}>} */
    healthz: () => get('/healthz'),
    /** @returns {Promise<{status: 'ready'}>} */
    readyz: () => get('/readyz'),
    /** Prometheus text. @returns {Promise<string>} */
    metrics: async () => (await request('GET', '/metrics', { raw: true })).data,
    /** The OpenAPI document. @returns {Promise<Record<string, unknown>>} */
    openapi: () => get('/v1/openapi.json'),

    /**
     * Keeps the state of repos current; see watch() below.
     * @param {WatchOptions} [o]
     * @returns {Watch}
     */
    watch: (o) => watch(client, o),
  };
  return client;
}

/** @typedef {ReturnType<typeof createClient>} Client */
/** @typedef {ReturnType<typeof watch>} Watch */

/**
 * @typedef {object} WatchOptions
 * @property {string[]} [repos] the repos to watch; none (the default): every repo the token sees
 * @property {string[]} [overviews] the repos whose overview to keep (default: those of repos; none when watching all)
 * @property {boolean} [orgs] keep the orgs too (default: when watching all)
 * @property {AbortSignal} [signal] ends the watch
 * @property {(state: WatchState) => void} [onChange]
 * @property {(event: StreamEvent) => void} [onEvent] every event, after the state took it
 * @property {(error: Error) => void} [onError] a stream or a read failed (the watch goes on)
 * @property {number} [minBackoffMs] first wait before a retry (default 500)
 * @property {number} [maxBackoffMs] longest wait (default 30000)
 */
/**
 * What the app shows, replaced (never changed) on every change, so that
 * `state !== previous` says something changed.
 * @typedef {object} WatchState
 * @property {boolean} connected the stream is open
 * @property {boolean} loaded the repos were read at least once
 * @property {Map<string, Repo>} repos
 * @property {Map<string, Overview>} overviews
 * @property {Map<string, Org>} orgs
 * @property {Error | null} error the last failure, null once things work again
 */

/**
 * Keeps an app's state of its repos current: on every (re)connect the
 * snapshots (or, for every repo, the `snapshot-needed` hint and the paged
 * list), then each status and projection event; overviews are refetched
 * with If-None-Match when a projection or a newer version says so. A
 * stream that fails or ends is reopened with backoff; a read that fails is
 * tried again.
 * @param {Client} client
 * @param {WatchOptions} [o]
 */
export function watch(client, o = {}) {
  const all = !o.repos || o.repos.length === 0;
  const minMs = o.minBackoffMs ?? 500;
  const maxMs = o.maxBackoffMs ?? 30000;
  const wantOrgs = o.orgs ?? all;
  let overviewIds = new Set(o.overviews ?? (all ? [] : o.repos));
  const ctl = new AbortController();
  if (o.signal) {
    if (o.signal.aborted) ctl.abort();
    else o.signal.addEventListener('abort', () => ctl.abort(), { once: true });
  }
  const signal = ctl.signal;
  /** @type {Set<(s: WatchState) => void>} */
  const listeners = new Set();
  if (o.onChange) listeners.add(o.onChange);

  /** @type {WatchState} */
  let state = { connected: false, loaded: false, repos: new Map(), overviews: new Map(), orgs: new Map(), error: null };
  /** @type {Map<string, string | null>} */
  const etags = new Map();
  // Events seen per repo, so that a list read never overwrites what an
  // event said while the read was out.
  /** @type {Map<string, number>} */
  const seq = new Map();
  const bump = (/** @type {string} */ id) => seq.set(id, (seq.get(id) || 0) + 1);

  /** @param {Partial<WatchState>} change */
  function set(change) {
    state = { ...state, ...change };
    // A closed watch tells nobody anything any more.
    if (signal.aborted) return;
    for (const fn of listeners) {
      try { fn(state); } catch (e) { queueMicrotask(() => { throw e; }); }
    }
  }
  /** @param {unknown} e */
  function failed(e) {
    if (signal.aborted) return;
    const err = e instanceof Error ? e : new Error(String(e));
    set({ error: err });
    if (o.onError) o.onError(err);
  }
  const sleep = (/** @type {number} */ ms) => new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => { clearTimeout(t); resolve(undefined); }, { once: true });
  });
  const backoff = (/** @type {number} */ n) => Math.min(maxMs, minMs * 2 ** Math.min(n, 16)) * (0.75 + Math.random() / 2);

  /**
   * Runs load once at a time; asked while it runs, it runs once more
   * after (that run may have read before what the caller learnt of). A
   * failure is retried with backoff.
   * @param {() => Promise<void>} load
   */
  function single(load) {
    let again = false, failures = 0;
    /** @type {Promise<void> | null} */
    let current = null;
    const loop = async () => {
      do {
        again = false;
        try {
          await load();
          failures = 0;
        } catch (e) {
          if (signal.aborted) return;
          failed(e);
          await sleep(backoff(failures++));
          again = !signal.aborted;
        }
      } while (again && !signal.aborted);
    };
    // The promise resolves once the run that follows the call is done.
    return () => {
      if (current) {
        again = true;
        return current;
      }
      current = loop().finally(() => { current = null; });
      return current;
    };
  }

  const loadList = single(async () => {
    const before = new Map(seq);
    /** @type {Repo[]} */
    let repos;
    if (all) {
      repos = await client.listAllRepos({ signal });
    } else {
      const got = await Promise.all((o.repos || []).map((id) => client.getRepo(id).catch((e) => {
        if (e instanceof RepoviewError && e.status === 404) return null;
        throw e;
      })));
      repos = /** @type {Repo[]} */ (got.filter(Boolean));
    }
    const next = new Map();
    for (const repo of repos) {
      const old = state.repos.get(repo.id);
      if (old && (before.get(repo.id) || 0) !== (seq.get(repo.id) || 0)) {
        next.set(repo.id, { ...repo, freshness: old.freshness, version: Math.max(old.version, repo.version) });
      } else {
        next.set(repo.id, repo);
      }
    }
    // A repo an event named meanwhile that the (older) list missed stays.
    for (const [id, repo] of state.repos) {
      if (!next.has(id) && (before.get(id) || 0) !== (seq.get(id) || 0)) next.set(id, repo);
    }
    const overviews = new Map([...state.overviews].filter(([id]) => next.has(id)));
    set({ repos: next, overviews, loaded: true, error: null });
    for (const id of overviewIds) if (next.has(id)) overviewLoader(id)();
  });

  const loadOrgs = single(async () => {
    try {
      const { orgs } = await client.listOrgs();
      set({ orgs: new Map(orgs.map((x) => [x.id, x])) });
    } catch (e) {
      // A token that may not list orgs just has none.
      if (e instanceof RepoviewError && (e.status === 401 || e.status === 403)) return;
      throw e;
    }
  });

  /** @type {Map<string, () => Promise<void>>} */
  const overviewLoaders = new Map();
  /** @param {string} id */
  function overviewLoader(id) {
    let l = overviewLoaders.get(id);
    if (!l) {
      l = single(async () => {
        if (!overviewIds.has(id)) return;
        let got;
        try {
          got = await client.getOverview(id, { etag: state.overviews.has(id) ? etags.get(id) : null, signal });
        } catch (e) {
          if (!(e instanceof RepoviewError && e.status === 404)) throw e;
          const overviews = new Map(state.overviews);
          overviews.delete(id);
          set({ overviews });
          return;
        }
        if (!got || !overviewIds.has(id)) return;
        etags.set(id, got.etag);
        const overviews = new Map(state.overviews);
        overviews.set(id, got.overview);
        /** @type {Partial<WatchState>} */
        const change = { overviews, error: null };
        const repo = state.repos.get(id);
        if (repo && got.overview.version >= repo.version) {
          const repos = new Map(state.repos);
          repos.set(id, { ...repo, version: got.overview.version, freshness: got.overview.freshness });
          change.repos = repos;
        }
        set(change);
      });
      overviewLoaders.set(id, l);
    }
    return l;
  }

  /** @param {StreamEvent} ev */
  function take(ev) {
    const d = ev.data && typeof ev.data === 'object' ? ev.data : {};
    switch (ev.event) {
      case 'snapshot':
      case 'status':
      case 'projection': {
        if (typeof d.repo !== 'string') return;
        const id = d.repo;
        bump(id);
        const old = state.repos.get(id);
        const version = typeof d.version === 'number' ? d.version : old?.version ?? 0;
        const repos = new Map(state.repos);
        repos.set(id, { ...(old || { id }), version: Math.max(version, old?.version ?? 0),
          freshness: d.freshness || old?.freshness });
        set({ repos });
        // A repo never listed: the list has more to say (its URL, org).
        if (!old || old.url === undefined) loadList();
        const shown = state.overviews.get(id);
        if (overviewIds.has(id) && (ev.event === 'projection' || !shown || version > shown.version)) {
          overviewLoader(id)();
        }
        return;
      }
      case 'removed': {
        if (typeof d.repo !== 'string') return;
        bump(d.repo);
        const repos = new Map(state.repos);
        const overviews = new Map(state.overviews);
        repos.delete(d.repo);
        overviews.delete(d.repo);
        set({ repos, overviews });
        return;
      }
      case 'snapshot-needed':
        if (hintTimer) { clearTimeout(hintTimer); hintTimer = null; }
        loadList();
        if (wantOrgs) loadOrgs();
        for (const id of overviewIds) overviewLoader(id)();
        return;
      case 'org': {
        if (!wantOrgs || typeof d.id !== 'string') return;
        const orgs = new Map(state.orgs);
        const old = state.orgs.get(d.id);
        orgs.set(d.id, { ...(old || {}), ...d, budget: old?.budget ?? null });
        set({ orgs });
        // Its repos and budget change when a sync ends.
        if (d.syncStatus === 'idle' || d.syncStatus === 'error') { loadOrgs(); loadList(); }
        return;
      }
      case 'org-removed': {
        if (!wantOrgs || typeof d.id !== 'string') return;
        const orgs = new Map(state.orgs);
        orgs.delete(d.id);
        set({ orgs });
        return;
      }
      default:
    }
  }

  /** @type {ReturnType<typeof setTimeout> | null} */
  let hintTimer = null;
  const closed = (async () => {
    let failures = 0;
    let retryMs = 0;
    while (!signal.aborted) {
      try {
        for await (const ev of client.events({
          repos: all ? [] : o.repos, signal, onRetry: (ms) => { retryMs = ms; },
          onOpen: () => {
            failures = 0;
            set({ connected: true });
            if (all) {
              // A server that sends snapshot-needed says when to read the
              // list; an older one sends per-repo snapshots and no hint.
              hintTimer = setTimeout(() => { hintTimer = null; loadList(); if (wantOrgs) loadOrgs(); }, 1000);
            } else {
              loadList();
            }
          },
        })) {
          if (signal.aborted) break;
          take(ev);
          if (o.onEvent) o.onEvent(ev);
        }
        if (!signal.aborted) failed(new RepoviewError(0, 'network', 'the event stream ended'));
      } catch (e) {
        failed(e);
      }
      if (hintTimer) { clearTimeout(hintTimer); hintTimer = null; }
      if (signal.aborted) break;
      set({ connected: false });
      await sleep(Math.max(retryMs, backoff(failures++)));
    }
    set({ connected: false });
  })();

  return {
    /** The current state. @returns {WatchState} */
    getState: () => state,
    /** Calls fn on every change; returns the function that stops it. @param {(s: WatchState) => void} fn */
    subscribe(fn) {
      listeners.add(fn);
      return () => { listeners.delete(fn); };
    },
    /** Which repos' overviews to keep (e.g. the one on screen). @param {string[]} ids */
    setOverviews(ids) {
      overviewIds = new Set(ids);
      const overviews = new Map([...state.overviews].filter(([id]) => overviewIds.has(id)));
      if (overviews.size !== state.overviews.size) set({ overviews });
      for (const id of overviewIds) overviewLoader(id)();
    },
    /**
     * Reads the repos (and orgs) again, e.g. after adding one; resolves
     * when the state has them.
     * @returns {Promise<void>}
     */
    async reload() {
      await Promise.all([loadList(), wantOrgs ? loadOrgs() : null]);
    },
    /** Ends the watch. */
    close() { ctl.abort(); },
    /** Resolves when the watch has ended. */
    closed,
  };
}
