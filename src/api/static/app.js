'use strict';
// The repoview dashboard: one page, no build step. Its state comes from the
// JS client (clients/js, served as /repoview-client.js): one watch() of
// every repo keeps the list, the orgs and the selected repo's overview
// current over the event stream. Every piece of data reaches the DOM
// through textContent or attributes, never innerHTML.
window.__loadedAt = Date.now();

const state = {
  repos: new Map(),      // id -> {id, url, github, defaultBranch, org?, version, freshness}
  orgs: new Map(),       // id -> {id, github, installationId, repoCount, syncStatus, ..., budget}
  order: [],             // repo ids in list order
  selected: null,        // selected repo id
  overview: null,        // the selected repo's last overview
  message: null,         // {text, kind} shown above the table
  client: null,          // repoview-client, once imported
  watcher: null,         // its watch() of every repo
  watched: null,         // the watch's last state
};

const $ = (id) => document.getElementById(id);

// Builds an element: el('td', {class: 'x', title: 't'}, child, 'text', ...).
function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === 'class') node.className = v;
    else if (k === 'text') node.textContent = v;
    else if (k.startsWith('on')) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

// ---- time ------------------------------------------------------------------

function parseTime(t) {
  if (t === null || t === undefined || t === '') return null;
  const ms = typeof t === 'number' ? t : Date.parse(t);
  return Number.isFinite(ms) ? ms : null;
}

// "12s", "5m", "3h", "4d", "2mo", "1y": a compact age.
function shortAge(ms) {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 60) return s + 's';
  const m = Math.floor(s / 60);
  if (m < 60) return m + 'm';
  const h = Math.floor(m / 60);
  if (h < 48) return h + 'h';
  const d = Math.floor(h / 24);
  if (d < 60) return d + 'd';
  if (d < 730) return Math.floor(d / 30) + 'mo';
  return Math.floor(d / 365) + 'y';
}

function ago(t) {
  const ms = parseTime(t);
  return ms === null ? 'never' : shortAge(Date.now() - ms) + ' ago';
}

function fullTime(t) {
  const ms = parseTime(t);
  return ms === null ? '' : new Date(ms).toLocaleString();
}

// A <time> whose text is a relative age, refreshed by the clock tick.
function ageNode(t) {
  const ms = parseTime(t);
  if (ms === null) return el('span', {class: 'muted', text: '—'});
  return el('time', {datetime: new Date(ms).toISOString(), 'data-age': ms,
                     title: fullTime(ms), text: ago(ms)});
}

// ---- freshness ---------------------------------------------------------------

function hasPrs(repo) {
  return !!(repo && repo.github);
}

// One state for a repo from its freshness: refreshing > queued > error >
// stale > fresh. Staleness is recomputed here so it grows while the page is
// open, not only when the server says so.
function repoState(repo) {
  const f = (repo && repo.freshness) || {};
  const prs = hasPrs(repo);
  const statuses = [f.branchSyncStatus];
  if (prs) statuses.push(f.prSyncStatus);
  if (statuses.includes('running')) return {state: 'refreshing'};
  if (statuses.includes('queued')) return {state: 'queued'};
  const errors = [];
  if (f.branchSyncStatus === 'error') errors.push(['branches', f.branchSyncError]);
  if (prs && f.prSyncStatus === 'error') errors.push(['PRs', f.prSyncError]);
  if (errors.length) {
    const text = errors.map(([k, e]) =>
      k + ': ' + ((e && (e.message || e.code)) || 'sync failed')).join('; ');
    return {state: 'error', message: text};
  }
  const ats = [parseTime(f.branchSyncAt)];
  if (prs) ats.push(parseTime(f.prSyncAt));
  if (ats.includes(null)) {
    return {state: 'stale', age: null};
  }
  const oldest = Math.min(...ats);
  const limit = (Number(f.staleAfterSeconds) || 0) * 1000;
  const age = Date.now() - oldest;
  if (f.stale || (limit > 0 && age > limit)) return {state: 'stale', age};
  return {state: 'fresh', age};
}

const BADGE_CLASS = {fresh: 'b-ok', queued: 'b-info', refreshing: 'b-info b-running',
                     stale: 'b-warn', error: 'b-bad'};

function badge(repo, testid) {
  const s = repoState(repo);
  let text = s.state;
  let title = '';
  if (s.state === 'stale') {
    text = s.age === null ? 'stale · never synced' : 'stale · ' + shortAge(s.age);
    title = s.age === null ? 'Not synced yet' : 'Last synced ' + shortAge(s.age) + ' ago';
  } else if (s.state === 'fresh') {
    title = 'Synced ' + shortAge(s.age) + ' ago';
  } else if (s.state === 'error') {
    title = s.message;
  } else if (s.state === 'queued') {
    title = 'A sync is queued';
  } else {
    title = 'A sync is running';
  }
  return el('span', {class: 'badge ' + BADGE_CLASS[s.state], 'data-testid': testid,
                     'data-state': s.state, title, text});
}

function kindStatus(label, status, at, err) {
  const cls = {idle: 'b-ok', queued: 'b-info', running: 'b-info b-running',
               error: 'b-bad'}[status] || '';
  const text = status === 'running' ? 'refreshing' : status === 'idle' ? 'ok' : status || '?';
  const title = err ? (err.code ? err.code + ': ' : '') + (err.message || '') : null;
  return el('span', {'data-testid': 'kind-' + label.toLowerCase()},
            label + ' ', el('span', {class: 'badge ' + cls, title, text}),
            parseTime(at) === null ? ' never synced' : ' synced ',
            parseTime(at) === null ? null : ageNode(at));
}

// ---- HTTP --------------------------------------------------------------------

// Credentials: the session cookie POST /v1/session sets (HttpOnly, so this
// script never holds a token) goes with every request and the EventSource.
async function api(method, path, body, headers) {
  const h = Object.assign({Accept: 'application/json'}, headers || {});
  if (body !== undefined) h['Content-Type'] = 'application/json';
  const res = await fetch(path, {
    method, headers: h, cache: 'no-store', credentials: 'same-origin',
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  let data = null;
  if (res.status !== 204 && res.status !== 304) {
    const text = await res.text();
    try { data = text ? JSON.parse(text) : null; } catch { data = null; }
  }
  if (res.status === 401 && path !== '/v1/session') showAuth('needed');
  if (res.status === 403 && method !== 'GET') showAuth('scope');
  return {status: res.status, ok: res.ok, data, headers: res.headers};
}

function errorText(r) {
  const e = r.data && r.data.error;
  if (e && e.message) return e.message + (e.code ? ' (' + e.code + ')' : '');
  return 'HTTP ' + r.status;
}

// A 401 from the stream or a list read while the box is already up only
// repeats "a token is needed": it must not replace why the last sign-in was
// refused, which the user has not read yet.
function showAuth(why) {
  if (why === 'needed' && !$('auth').hidden) return;
  $('auth-text').textContent =
    why === 'refused' ? 'That token was refused. Enter a valid token.'
    : why === 'scope' ? 'Your token may not do this. Sign in with another token.'
    : 'This API needs a token. Sign in with yours.';
  $('auth').hidden = false;
}

function setSignedIn(session) {
  const out = $('signed-in');
  const signedIn = !!(session && session.via === 'cookie');
  out.hidden = !signedIn;
  $('sign-out').hidden = !signedIn;
  if (signedIn) out.textContent = 'signed in (' + session.scope + ')';
}

async function checkSession() {
  const r = await api('GET', '/v1/session');
  if (!r.ok || !r.data) return;
  setSignedIn(r.data);
  if (r.data.tokensConfigured && !r.data.scope && !r.data.readOpen) showAuth('needed');
}

$('token-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const t = $('token-input').value.trim();
  $('token-input').value = '';
  const r = await api('POST', '/v1/session', {token: t});
  if (!r.ok) { showAuth('refused'); return; }
  $('auth').hidden = true;
  setSignedIn(r.data);
  // The stream and the list start over with the new credentials.
  connect();
});

$('sign-out').addEventListener('click', async () => {
  await api('DELETE', '/v1/session');
  setSignedIn(null);
  state.repos = new Map();
  state.orgs = new Map();
  state.order = [];
  renderList();
  await checkSession();
  connect();
});

// ---- repo list ---------------------------------------------------------------

// Each change of the watch's state: the list, the orgs and the selected
// overview are re-rendered when they are new objects.
function onWatch(w) {
  const prev = state.watched;
  state.watched = w;
  setReconnecting(!w.connected && !!w.error);
  if (w.error && w.error.status === 401) showAuth('needed');
  const listChanged = !prev || prev.repos !== w.repos || prev.orgs !== w.orgs;
  if (listChanged) {
    state.repos = w.repos;
    state.orgs = w.orgs;
    state.order = [...w.repos.keys()].sort();
    renderList();
    if (!w.loaded && w.error) setListError('Cannot load repositories: ' + w.error.message);
    if (w.loaded && (!state.selected || !w.repos.has(state.selected))) {
      selectFromHash();
      return;
    }
  }
  const ov = (state.selected && w.overviews.get(state.selected)) || null;
  if (listChanged || ov !== state.overview) {
    state.overview = ov;
    renderDetail();
  }
}

function setListError(text) {
  const empty = $('repo-list-empty');
  if (text) {
    empty.textContent = text;
    empty.hidden = false;
    empty.className = 'msg bad';
  } else {
    empty.className = 'muted';
    empty.hidden = state.order.length > 0;
    if (!empty.hidden) return;
    empty.textContent = '';
    empty.append('No repositories yet. Add one below or with ',
                 el('code', {text: 'repoview add'}), '.');
  }
}

function repoItem(repo) {
  const s = repoState(repo);
  const link = el('a', {href: '#repo=' + encodeURIComponent(repo.id),
                        'aria-current': repo.id === state.selected ? 'true' : null},
    el('span', {class: 'repo-line'},
       el('span', {class: 'repo-name', text: repo.id}), badge(repo, 'repo-badge')),
    s.state === 'error'
      ? el('span', {class: 'repo-err', 'data-testid': 'repo-error', title: s.message,
                    text: s.message})
      : el('span', {class: 'repo-sub', text: repo.github || repo.url || ''}));
  return el('li', {'data-testid': 'repo-item', 'data-repo': repo.id}, link);
}

const ORG_STATUS_CLASS = {idle: 'b-ok', queued: 'b-info', running: 'b-info b-running',
                          error: 'b-bad'};

// The heading of one org's group: its name, sync status, repo count and
// what is left of its token's GitHub budget.
function orgHead(org, count) {
  const status = org.syncStatus || 'idle';
  const e = org.syncError;
  const title = status === 'error' && e ? (e.code ? e.code + ': ' : '') + (e.message || '')
    : parseTime(org.syncAt) === null ? 'Not listed yet' : 'Listed ' + ago(org.syncAt);
  const b = org.budget;
  let budget = null;
  if (b && typeof b.remaining === 'number') {
    const reset = parseTime(b.resetAt);
    budget = el('span', {class: 'org-budget', 'data-testid': 'org-budget',
                         title: reset === null ? 'GitHub budget left'
                           : 'GitHub budget left; resets ' + fullTime(reset),
                         text: b.remaining + (typeof b.limit === 'number' ? '/' + b.limit : '')
                           + ' left'});
  }
  return el('li', {class: 'org-head', 'data-testid': 'org-group', 'data-org': org.id},
    el('span', {class: 'repo-line'},
       el('span', {class: 'org-name', text: org.id}),
       el('span', {class: 'badge ' + (ORG_STATUS_CLASS[status] || ''), 'data-testid': 'org-status',
                   'data-state': status, title,
                   text: status === 'running' ? 'listing' : status === 'idle' ? 'ok' : status})),
    el('span', {class: 'repo-sub'},
       el('span', {'data-testid': 'org-count',
                   text: (org.repoCount ?? count) + ' repo' + ((org.repoCount ?? count) === 1 ? '' : 's')}),
       budget ? ' · ' : null, budget));
}

// The list, grouped by org once there are orgs: a heading per org (sorted
// by id) followed by its repos, then "Other" for repos of no (known) org.
// The list shows at most this many repos more each time "Show more" is
// clicked, so that 10,000 registered repos stay a light page; the filter
// box narrows them by id or GitHub name.
const LIST_STEP = 200;
state.filter = '';
state.shown = LIST_STEP;

function matchesFilter(repo) {
  if (!state.filter) return true;
  return repo.id.toLowerCase().includes(state.filter) ||
         (repo.github || '').toLowerCase().includes(state.filter);
}

function renderList() {
  const ul = $('repo-list');
  const grouped = state.orgs.size > 0;
  const byOrg = new Map([...state.orgs.keys()].sort().map((id) => [id, []]));
  const other = [];
  let total = 0;
  for (const id of state.order) {
    const repo = state.repos.get(id);
    if (!repo || !matchesFilter(repo)) continue;
    total++;
    const group = grouped && repo.org && byOrg.get(repo.org);
    (group || other).push(repo);
  }
  const items = [];
  let left = state.shown;
  const add = (repos) => {
    for (const repo of repos.slice(0, Math.max(left, 0))) items.push(repoItem(repo));
    left -= repos.length;
  };
  if (grouped) {
    for (const [id, repos] of byOrg) {
      if (left <= 0) break;
      if (state.filter && !repos.length) continue;
      items.push(orgHead(state.orgs.get(id), repos.length));
      add(repos);
    }
    if (other.length && left > 0) {
      items.push(el('li', {class: 'org-head', 'data-testid': 'org-group', 'data-org': ''},
                    el('span', {class: 'org-name', text: 'Other'})));
    }
  }
  add(other);
  ul.replaceChildren(...items);
  const shown = Math.min(total, state.shown);
  const more = $('repo-list-more');
  more.hidden = total <= shown && !state.filter;
  $('repo-list-count').textContent = state.filter
    ? `${total} of ${state.order.length} match` + (shown < total ? `, showing ${shown}` : '')
    : `Showing ${shown} of ${total}`;
  $('repo-list-show').hidden = shown >= total;
  setListError(null);
}

$('repo-search').addEventListener('input', (ev) => {
  state.filter = ev.target.value.trim().toLowerCase();
  state.shown = LIST_STEP;
  renderList();
});

$('repo-list-show').addEventListener('click', () => {
  state.shown += LIST_STEP;
  renderList();
});

function renderRepoItem(id) {
  const repo = state.repos.get(id);
  const old = $('repo-list').querySelector(`li[data-repo="${CSS.escape(id)}"]`);
  if (!repo || !old) return;
  const focused = old.contains(document.activeElement);
  const fresh = repoItem(repo);
  old.replaceWith(fresh);
  if (focused) fresh.querySelector('a').focus();
}

// ---- selection -----------------------------------------------------------------

function hashRepo() {
  const p = new URLSearchParams(location.hash.replace(/^#/, ''));
  return p.get('repo');
}

function selectFromHash() {
  // An operations page (ops.js) owns the hash while it is shown.
  if (new URLSearchParams(location.hash.replace(/^#/, '')).get('page')) return;
  let id = hashRepo();
  if (!id || !state.repos.has(id)) {
    if (id && !state.repos.has(id) && state.order.length === 0) id = null;
    if (!id || !state.repos.has(id)) {
      id = state.order[0] || null;
      if (id) history.replaceState(null, '', '#repo=' + encodeURIComponent(id));
    }
  }
  select(id);
}

function select(id) {
  if (id === state.selected && state.overview) { renderDetail(); return; }
  state.selected = id;
  state.overview = (id && state.watched && state.watched.overviews.get(id)) || null;
  state.message = null;
  renderList();
  renderDetail();
  if (state.watcher) state.watcher.setOverviews(id ? [id] : []);
}

window.addEventListener('hashchange', selectFromHash);

// ---- overview ------------------------------------------------------------------

// One button for whichever repo is selected, so re-renders keep its focus.
const refreshButton = el('button', {type: 'button', class: 'primary',
                                    'data-testid': 'refresh-button', text: 'Refresh'});
refreshButton.addEventListener('click', () => {
  if (state.selected) refresh(state.selected, refreshButton);
});

async function refresh(id, button) {
  button.disabled = true;
  button.setAttribute('aria-busy', 'true');
  try {
    // The statuses it causes arrive as events, through the watch.
    const r = await api('POST', '/v1/repos/' + encodeURIComponent(id) + '/refresh?kind=all');
    if (r.status === 202 && r.data) {
      if (state.selected === id && state.message && state.message.kind !== 'info') {
        state.message = null;
      }
    } else if (r.status === 401) {
      if (state.selected === id) {
        state.message = {text: 'Refresh needs an API token: enter it above.', kind: 'bad'};
      }
    } else if (state.selected === id) {
      state.message = {text: 'Refresh failed: ' + errorText(r), kind: 'bad'};
    }
  } catch (e) {
    if (state.selected === id) {
      state.message = {text: 'Refresh failed: ' + e.message, kind: 'bad'};
    }
  } finally {
    button.disabled = false;
    button.removeAttribute('aria-busy');
    if (state.selected === id) renderDetail();
  }
}

function prBadges(pr) {
  const out = [];
  if (pr.draft) out.push(el('span', {class: 'badge', text: 'draft'}));
  else if (pr.state && pr.state !== 'open') {
    out.push(el('span', {class: 'badge b-purple', text: pr.state}));
  } else out.push(el('span', {class: 'badge b-ok', text: 'open'}));
  if (pr.ciStatus) {
    const cls = {success: 'b-ok', failure: 'b-bad', error: 'b-bad',
                 pending: 'b-warn', expected: 'b-warn'}[pr.ciStatus] || '';
    const mark = {success: '✓ ', failure: '✗ ', error: '✗ ', pending: '● '}[pr.ciStatus] || '';
    out.push(el('span', {class: 'badge ' + cls, title: 'CI: ' + pr.ciStatus,
                         text: mark + 'CI'}));
  }
  if (pr.reviewDecision) {
    const cls = {approved: 'b-ok', changes_requested: 'b-bad',
                 review_required: 'b-warn'}[pr.reviewDecision] || '';
    const text = pr.reviewDecision.replace(/_/g, ' ');
    out.push(el('span', {class: 'badge ' + cls, title: 'Review: ' + text, text}));
  }
  return out;
}

function prLink(pr) {
  const safe = typeof pr.url === 'string' && /^https?:\/\//i.test(pr.url);
  return el(safe ? 'a' : 'span', {href: safe ? pr.url : null, target: safe ? '_blank' : null,
                                  rel: safe ? 'noopener noreferrer' : null,
                                  title: pr.title || null, text: '#' + pr.number});
}

function branchRow(b, base) {
  const ahead = b.isDefault ? el('span', {class: 'muted', text: '—'})
    : el('span', {title: `${b.ahead} ahead of, ${b.behind} behind ${base}`},
         el('span', {text: '↑' + b.ahead}), ' ', el('span', {text: '↓' + b.behind}));
  let conflicts;
  if (b.isDefault) conflicts = el('span', {class: 'muted', text: '—'});
  else if (b.unrelated) {
    conflicts = el('span', {class: 'badge b-warn', 'data-testid': 'unrelated-badge',
                            title: `No history in common with ${base}: nothing to merge or diff`,
                            text: 'unrelated'});
  } else if (b.conflicts) {
    const files = Array.isArray(b.conflictFiles) ? b.conflictFiles : [];
    conflicts = el('span', {class: 'badge b-bad', 'data-testid': 'conflict-badge',
                            title: files.length ? 'Conflicts in:\n' + files.join('\n') : 'Conflicts',
                            text: files.length ? `conflicts · ${files.length}` : 'conflicts'});
  } else conflicts = el('span', {class: 'badge b-ok', text: 'clean'});
  const d = b.diffStat || {};
  const diff = b.isDefault || b.unrelated ? el('span', {class: 'muted', text: '—'})
    : el('span', {title: `${d.files || 0} files changed since the merge base`},
         el('span', {class: 'add', text: '+' + (d.additions || 0)}), ' ',
         el('span', {class: 'del', text: '−' + (d.deletions || 0)}),
         el('span', {class: 'muted', text: ` · ${d.files || 0} file${d.files === 1 ? '' : 's'}`}));
  const c = b.commit || {};
  const commit = el('div', {},
    el('span', {text: c.author || ''}), el('span', {class: 'muted'}, ' · ', ageNode(c.date)),
    el('span', {class: 'subject muted', title: c.subject || '', text: c.subject || ''}));
  const pr = b.pr ? el('div', {class: 'pr-cell'}, prLink(b.pr), ...prBadges(b.pr))
                  : el('span', {class: 'muted', text: '—'});
  return el('tr', {'data-testid': 'branch-row', 'data-branch': b.name,
                   'data-conflicts': b.conflicts ? 'true' : 'false'},
    el('td', {},
       el('code', {class: 'branch-name', title: b.sha ? 'tip ' + b.sha : null, text: b.name}),
       b.isDefault ? el('span', {}, ' ', el('span', {class: 'badge b-info', text: 'default'}))
                   : null),
    el('td', {class: 'num'}, ahead), el('td', {}, conflicts),
    el('td', {class: 'num'}, diff), el('td', {}, commit), el('td', {}, pr));
}

function table(caption, heads, rows, testid) {
  return el('div', {class: 'table-wrap'}, el('table', {'data-testid': testid},
    el('caption', {class: 'sr-only', text: caption}),
    el('thead', {}, el('tr', {}, ...heads.map((h) => el('th', {scope: 'col', text: h})))),
    el('tbody', {}, ...rows)));
}

function emptyState(repo, ov) {
  const f = (ov && ov.freshness) || (repo && repo.freshness) || {};
  const st = f.branchSyncStatus;
  let text;
  if (st === 'running') text = 'The first sync is running…';
  else if (st === 'queued') text = 'The first sync is queued; a worker will pick it up.';
  else if (st === 'error') {
    // The error itself is shown just above.
    text = f.branchSyncAt ? 'No branches: the last sync failed.'
                          : 'No branches yet: the first sync failed.';
  } else if (!f.branchSyncAt) text = 'Not synced yet. Press Refresh to queue a sync.';
  else text = 'This repository has no branches.';
  return el('div', {class: 'empty', 'data-testid': 'empty-state', role: 'status', text});
}

function renderDetail() {
  const box = $('detail');
  const id = state.selected;
  const repo = id && state.repos.get(id);
  if (!repo) {
    box.replaceChildren(state.order.length === 0 ? el('div', {class: 'empty',
      text: 'Add a repository to see its branches and pull requests.'}) : '');
    return;
  }
  const ov = state.overview && state.overview.repo && state.overview.repo.id === id
    ? state.overview : null;
  const f = repo.freshness || {};
  const s = repoState(repo);
  const button = refreshButton;
  const kinds = el('div', {class: 'kinds'},
    kindStatus('Branches', f.branchSyncStatus, f.branchSyncAt, f.branchSyncError),
    hasPrs(repo) ? kindStatus('PRs', f.prSyncStatus, f.prSyncAt, f.prSyncError)
                 : el('span', {text: 'No GitHub repo: PRs are not synced'}),
    el('span', {text: 'version ' + (ov ? ov.version : repo.version || 0)}));
  const sub = el('div', {class: 'detail-sub'}, el('span', {text: repo.url || ''}));
  if (repo.github) {
    sub.append(' · ', el('a', {href: 'https://github.com/' + repo.github, target: '_blank',
                               rel: 'noopener noreferrer', text: repo.github}));
  }
  const nodes = [
    el('div', {class: 'detail-head'}, el('h2', {text: repo.id}),
       badge(repo, 'detail-badge'), button),
    sub, kinds,
  ];
  if (s.state === 'error') {
    nodes.push(el('div', {class: 'msg bad', 'data-testid': 'sync-error', text: s.message}));
  }
  if (state.message) {
    nodes.push(el('div', {class: 'msg ' + state.message.kind, role: 'status',
                          text: state.message.text}));
  }
  if (!ov) {
    nodes.push(el('div', {class: 'empty', text: 'Loading…'}));
    box.replaceChildren(...nodes);
    return;
  }
  const counts = ov.counts || {};
  nodes.push(el('div', {class: 'counts', 'data-testid': 'counts'},
    el('div', {class: 'count'}, el('span', {class: 'n', text: counts.branches ?? 0}),
       el('span', {class: 'l', text: 'branches'})),
    el('div', {class: 'count' + (counts.conflicting ? ' bad' : '')},
       el('span', {class: 'n', text: counts.conflicting ?? 0}),
       el('span', {class: 'l', text: 'conflicting'})),
    el('div', {class: 'count'}, el('span', {class: 'n', text: counts.openPullRequests ?? 0}),
       el('span', {class: 'l', text: 'open pull requests'}))));
  const branches = Array.isArray(ov.branches) ? ov.branches : [];
  if (branches.length === 0) {
    nodes.push(emptyState(repo, ov));
  } else {
    const base = (ov.repo && ov.repo.defaultBranch) || 'the default branch';
    nodes.push(el('h3', {text: 'Branches'}), table('Branches against ' + base,
      ['Branch', 'Ahead / behind', 'Conflicts', 'Diff', 'Last commit', 'Pull request'],
      branches.map((b) => branchRow(b, base)), 'branch-table'));
  }
  const names = new Set(branches.map((b) => b.name));
  const others = (Array.isArray(ov.pullRequests) ? ov.pullRequests : [])
    .filter((p) => p.isCrossRepository || !names.has(p.headRef));
  if (others.length) {
    nodes.push(el('h3', {text: 'Pull requests from forks and other heads'}),
      table('Pull requests whose head is not a branch here',
        ['PR', 'Title', 'Author', 'Head', 'Status', 'Updated'],
        others.map((p) => el('tr', {'data-testid': 'fork-pr-row'},
          el('td', {}, prLink(p)), el('td', {text: p.title || ''}),
          el('td', {text: p.author || ''}),
          el('td', {}, el('code', {text: (p.headRepo ? p.headRepo + ':' : '') + (p.headRef || '')})),
          el('td', {}, el('div', {class: 'pr-cell'}, ...prBadges(p))),
          el('td', {}, ageNode(p.updatedAt)))), 'fork-pr-table'));
  }
  box.replaceChildren(...nodes);
}

// ---- live events -----------------------------------------------------------------

function setReconnecting(on) {
  $('reconnect').hidden = !on;
}

// (Re)starts the watch of every repo, with the credentials of now.
function connect() {
  if (!state.client) return;
  if (state.watcher) state.watcher.close();
  state.watched = null;
  const watcher = state.client.watch({
    overviews: state.selected ? [state.selected] : [],
    onChange: (w) => { if (state.watcher === watcher) onWatch(w); },
    // Jobs moved: the operations pages reload (ops.js).
    onEvent: (ev) => { if (ev.event === 'status' && window.rvOpsEvent) window.rvOpsEvent(); },
  });
  state.watcher = watcher;
}

// ---- add form ----------------------------------------------------------------------

$('add-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const form = ev.target;
  const out = $('add-msg');
  // form.id is the form's own id attribute, hence namedItem.
  const field = (name) => form.elements.namedItem(name).value.trim();
  const body = {id: field('id'), url: field('url')};
  const gh = field('github');
  if (gh) body.github = gh;
  out.className = 'muted';
  out.textContent = 'Adding…';
  try {
    const r = await api('POST', '/v1/repos', body);
    if (r.status === 201) {
      out.textContent = 'Added; the first sync is queued.';
      form.reset();
      if (state.watcher) await state.watcher.reload();
      location.hash = '#repo=' + encodeURIComponent(body.id);
    } else {
      out.className = 'repo-err';
      out.textContent = r.status === 401 ? 'Needs a token (401): sign in above.'
                                         : errorText(r);
    }
  } catch (e) {
    out.className = 'repo-err';
    out.textContent = 'Cannot reach the API: ' + e.message;
  }
});

// ---- start -------------------------------------------------------------------------

// Ages and staleness move with the clock.
setInterval(() => {
  for (const t of document.querySelectorAll('time[data-age]')) {
    t.textContent = ago(Number(t.dataset.age));
  }
  // Only the drawn items: 10,000 repos are not 10,000 look-ups.
  for (const li of $('repo-list').querySelectorAll('li[data-repo]')) renderRepoItem(li.dataset.repo);
  const d = document.querySelector('[data-testid="detail-badge"]');
  if (d && state.selected && state.repos.has(state.selected)) {
    d.replaceWith(badge(state.repos.get(state.selected), 'detail-badge'));
  }
}, 15000);

checkSession();
// A classic script (ops.js shares its functions) imports the ES module.
import('/repoview-client.js').then((m) => {
  state.client = m.createClient();
  connect();
}, (e) => setListError('Cannot load the client: ' + e.message));
