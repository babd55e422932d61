/**
 * The single state a repo is in, for a badge: error, queued or running when
 * a kind is, else stale or idle.
 * @param {Freshness | undefined | null} f
 * @returns {'error' | 'running' | 'queued' | 'stale' | 'idle'}
 */
export function syncState(f: Freshness | undefined | null): "error" | "running" | "queued" | "stale" | "idle";
/**
 * Parses a text/event-stream from a stream of text chunks. A generator of
 * events; `retry:` values go to onRetry.
 * @param {AsyncIterable<string>} chunks
 * @param {(ms: number) => void} [onRetry]
 * @returns {AsyncGenerator<StreamEvent>}
 */
export function parseEvents(chunks: AsyncIterable<string>, onRetry?: (ms: number) => void): AsyncGenerator<StreamEvent>;
/**
 * One event of a text/event-stream: the lines between two blank lines.
 * null for a block without data (a comment, a `retry:`).
 * @param {string} block
 * @param {(ms: number) => void} [onRetry]
 * @returns {StreamEvent | null}
 */
export function parseEventBlock(block: string, onRetry?: (ms: number) => void): StreamEvent | null;
/**
 * A client of one repoview API.
 * @param {ClientOptions} [options]
 */
export function createClient(options?: ClientOptions): {
    request: (method: string, path: string, o?: {
        body?: unknown;
        headers?: Record<string, string>;
        ok?: number[];
        signal?: AbortSignal;
        raw?: boolean;
    }) => Promise<{
        status: number;
        headers: Headers;
        data: any;
    }>;
    events: (o?: {
        repos?: string[];
        signal?: AbortSignal;
        lastEventId?: string;
        onOpen?: () => void;
        onRetry?: (ms: number) => void;
        accessToken?: string;
    }) => AsyncGenerator<StreamEvent>;
    /** @param {{limit?: number, cursor?: string | null, org?: string, q?: string, signal?: AbortSignal}} [o] @returns {Promise<RepoList>} */
    listRepos: (o?: {
        limit?: number;
        cursor?: string | null;
        org?: string;
        q?: string;
        signal?: AbortSignal;
    }) => Promise<RepoList>;
    /**
     * Every page of the list, following nextCursor.
     * @param {{pageSize?: number, org?: string, q?: string, signal?: AbortSignal}} [o]
     * @returns {Promise<Repo[]>}
     */
    listAllRepos(o?: {
        pageSize?: number;
        org?: string;
        q?: string;
        signal?: AbortSignal;
    }): Promise<Repo[]>;
    /** @param {RepoCreate} repo @returns {Promise<Repo>} */
    createRepo: (repo: RepoCreate) => Promise<Repo>;
    /** @param {string} id @returns {Promise<Repo>} */
    getRepo: (id: string) => Promise<Repo>;
    /** @param {string} id @returns {Promise<void>} */
    deleteRepo: (id: string) => Promise<void>;
    /**
     * The overview; with etag, null when it did not change (304).
     * @param {string} id
     * @param {{etag?: string | null, signal?: AbortSignal}} [o]
     * @returns {Promise<{overview: Overview, etag: string | null} | null>}
     */
    getOverview(id: string, o?: {
        etag?: string | null;
        signal?: AbortSignal;
    }): Promise<{
        overview: Overview;
        etag: string | null;
    } | null>;
    /** @param {string} id @param {'all' | 'branches' | 'prs'} [kind] @returns {Promise<RefreshResult>} */
    refresh: (id: string, kind?: "all" | "branches" | "prs") => Promise<RefreshResult>;
    /** @returns {Promise<{orgs: Org[]}>} */
    listOrgs: () => Promise<{
        orgs: Org[];
    }>;
    /** @param {{id: string, github: string}} org @returns {Promise<Org>} */
    createOrg: (org: {
        id: string;
        github: string;
    }) => Promise<Org>;
    /** @param {string} id @returns {Promise<Org>} */
    getOrg: (id: string) => Promise<Org>;
    /** @param {string} id @returns {Promise<void>} */
    deleteOrg: (id: string) => Promise<void>;
    /** @param {string} id @returns {Promise<OrgRefreshResult>} */
    refreshOrg: (id: string) => Promise<OrgRefreshResult>;
    /** @returns {Promise<Session>} */
    getSession: () => Promise<Session>;
    /** Signs in: the API sets its session cookie (browsers). @param {string} token @returns {Promise<Session>} */
    signIn: (token: string) => Promise<Session>;
    /** @returns {Promise<void>} */
    signOut: () => Promise<void>;
    /** @returns {Promise<StreamToken>} */
    createStreamToken: () => Promise<StreamToken>;
    /** @returns {Promise<Queue>} */
    getQueue: () => Promise<Queue>;
    /** @returns {Promise<Workers>} */
    getWorkers: () => Promise<Workers>;
    /** @param {{limit?: number, cursor?: string | null}} [o] @returns {Promise<DeadLetters>} */
    getDeadLetters: (o?: {
        limit?: number;
        cursor?: string | null;
    }) => Promise<DeadLetters>;
    /** @param {number} n @param {string} id @returns {Promise<DeadLetterRetry>} */
    retryDeadLetter: (n: number, id: string) => Promise<DeadLetterRetry>;
    /** @param {number} n @param {string} id @returns {Promise<void>} */
    dropDeadLetter: (n: number, id: string) => Promise<void>;
    /**
     * @param {string} [window] from "5m" to "24h"
     * @returns {Promise<Stats>}
     */
    getStats: (window?: string) => Promise<Stats>;
    /**
     * Sends a GitHub webhook delivery as GitHub would (for tools and tests).
     * @param {string} event X-GitHub-Event
     * @param {string} delivery X-GitHub-Delivery
     * @param {string} signature X-Hub-Signature-256 ("sha256=<hex>") of body
     * @param {string} body the raw JSON
     * @returns {Promise<WebhookResult>}
     */
    postGithubWebhook: (event: string, delivery: string, signature: string, body: string) => Promise<WebhookResult>;
    /** @returns {Promise<{status: 'ok'}>} */
    healthz: () => Promise<{
        status: "ok";
    }>;
    /** @returns {Promise<{status: 'ready'}>} */
    readyz: () => Promise<{
        status: "ready";
    }>;
    /** Prometheus text. @returns {Promise<string>} */
    metrics: () => Promise<string>;
    /** The OpenAPI document. @returns {Promise<Record<string, unknown>>} */
    openapi: () => Promise<Record<string, unknown>>;
    /**
     * Keeps the state of repos current; see watch() below.
     * @param {WatchOptions} [o]
     * @returns {Watch}
     */
    watch: (o?: WatchOptions) => Watch;
};
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
export function watch(client: Client, o?: WatchOptions): {
    /** The current state. @returns {WatchState} */
    getState: () => WatchState;
    /** Calls fn on every change; returns the function that stops it. @param {(s: WatchState) => void} fn */
    subscribe(fn: (s: WatchState) => void): () => void;
    /** Which repos' overviews to keep (e.g. the one on screen). @param {string[]} ids */
    setOverviews(ids: string[]): void;
    /**
     * Reads the repos (and orgs) again, e.g. after adding one; resolves
     * when the state has them.
     * @returns {Promise<void>}
     */
    reload(): Promise<void>;
    /** Ends the watch. */
    close(): void;
    /** Resolves when the watch has ended. */
    closed: Promise<void>;
};
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
    constructor(status: number, code: string, message: string, body?: unknown);
    status: number;
    code: string;
    body: unknown;
}
export type Client = ReturnType<typeof createClient>;
export type Watch = ReturnType<typeof watch>;
export type WatchOptions = {
    /**
     * the repos to watch; none (the default): every repo the token sees
     */
    repos?: string[] | undefined;
    /**
     * the repos whose overview to keep (default: those of repos; none when watching all)
     */
    overviews?: string[] | undefined;
    /**
     * keep the orgs too (default: when watching all)
     */
    orgs?: boolean | undefined;
    /**
     * ends the watch
     */
    signal?: AbortSignal | undefined;
    onChange?: ((state: WatchState) => void) | undefined;
    /**
     * every event, after the state took it
     */
    onEvent?: ((event: StreamEvent) => void) | undefined;
    /**
     * a stream or a read failed (the watch goes on)
     */
    onError?: ((error: Error) => void) | undefined;
    /**
     * first wait before a retry (default 500)
     */
    minBackoffMs?: number | undefined;
    /**
     * longest wait (default 30000)
     */
    maxBackoffMs?: number | undefined;
};
/**
 * What the app shows, replaced (never changed) on every change, so that
 * `state !== previous` says something changed.
 */
export type WatchState = {
    /**
     * the stream is open
     */
    connected: boolean;
    /**
     * the repos were read at least once
     */
    loaded: boolean;
    repos: Map<string, Repo>;
    overviews: Map<string, Overview>;
    orgs: Map<string, Org>;
    /**
     * the last failure, null once things work again
     */
    error: Error | null;
};
export type SyncStatus = "idle" | "queued" | "running" | "error";
export type SyncError = {
    code: string;
    message: string;
    at?: string | null;
};
export type Freshness = {
    branchSyncStatus: SyncStatus;
    branchSyncAt: string | null;
    branchSyncError: SyncError | null;
    prSyncStatus: SyncStatus;
    prSyncAt: string | null;
    prSyncError: SyncError | null;
    stale: boolean;
    staleAfterSeconds: number;
};
export type Repo = {
    id: string;
    /**
     * absent until the repo list or GET /v1/repos/{id} said it
     */
    url?: string | undefined;
    github?: string | null | undefined;
    defaultBranch?: string | null | undefined;
    org?: string | undefined;
    version: number;
    freshness: Freshness;
};
export type RepoList = {
    repos: Repo[];
    nextCursor: string | null;
};
export type RepoCreate = {
    id: string;
    url: string;
    github?: string | null | undefined;
    defaultBranch?: string | null | undefined;
    syncIntervalSeconds?: number | null | undefined;
};
export type PullRequest = {
    number: number;
    title: string;
    state: string;
    draft: boolean;
    url: string;
    author: string | null;
    headRef: string;
    headRepo: string | null;
    baseRef: string;
    isCrossRepository: boolean;
    ciStatus: string | null;
    reviewDecision: string | null;
    updatedAt: string;
};
export type Branch = {
    name: string;
    isDefault: boolean;
    sha: string;
    ahead: number;
    behind: number;
    conflicts: boolean;
    conflictFiles: string[];
    diffStat: {
        files: number;
        additions: number;
        deletions: number;
    };
    commit: {
        author: string;
        date: string;
        subject: string;
    };
    firstSeenAt: string;
    pr: Partial<PullRequest> | null;
};
export type Overview = {
    repo: {
        id: string;
        url: string;
        github: string | null;
        defaultBranch: string | null;
        org?: string;
    };
    version: number;
    freshness: Freshness;
    counts: {
        branches: number;
        conflicting: number;
        openPullRequests: number;
    };
    truncated?: boolean | undefined;
    branches: Branch[];
    pullRequests: PullRequest[];
};
export type RefreshResult = {
    repo: string;
    queued: ("branches" | "prs")[];
    coalesced: ("branches" | "prs")[];
    freshness: Freshness;
};
export type Org = {
    id: string;
    github: string;
    installationId: number | null;
    repoCount: number;
    syncStatus: SyncStatus;
    syncAt: string | null;
    syncError: SyncError | null;
    budget?: {
        remaining: number | null;
        limit: number | null;
        resetAt: string | null;
    } | null | undefined;
};
export type OrgRefreshResult = {
    org: string;
    queued: "org"[];
    coalesced: "org"[];
};
export type Session = {
    scope?: "write" | "read" | "admin" | undefined;
    via?: "bearer" | "cookie" | "stream-token" | undefined;
    repos: string[];
    tokensConfigured: boolean;
    readOpen: boolean;
};
export type StreamToken = {
    token: string;
    expiresAt: number;
    expiresIn: number;
};
export type Json = Record<string, unknown>;
export type Queue = {
    waiting: Json[];
    waitingTotal: number;
    running: Json[];
    deadLetters: number;
};
export type Workers = {
    workers: Json[];
};
export type DeadLetters = {
    deadLetters: {
        index: number;
        id: string;
        entry: Json;
    }[];
    total: number;
    nextCursor: string | null;
};
export type DeadLetterRetry = {
    retried: number;
    outcome: "queued" | "coalesced";
    kind: string;
    job?: Json;
};
export type Stats = {
    windowSeconds: number;
    points: Json[];
    githubBudget: Json[];
};
export type WebhookResult = {
    queued: Json[];
    ignored?: string;
} | {
    pong: true;
};
/**
 * One server-sent event: its name, its id and its data (parsed JSON).
 */
export type StreamEvent = {
    /**
     * snapshot, status, projection, removed, snapshot-needed, org, org-removed
     */
    event: string;
    id?: string | undefined;
    data: any;
};
export type ClientOptions = {
    /**
     * the API's origin, e.g. "http://127.0.0.1:8080"; "" (the default) is the page's own
     */
    baseUrl?: string | undefined;
    /**
     * a bearer token (issue 9), or a function giving the current one; without one, the browser's session cookie goes
     */
    token?: string | (() => string | null | undefined | Promise<string | null | undefined>) | null | undefined;
    /**
     * fetch's credentials (default "same-origin": the dashboard's cookie)
     */
    credentials?: RequestCredentials | undefined;
    /**
     * another fetch (tests, proxies)
     */
    fetch?: typeof fetch | undefined;
};
