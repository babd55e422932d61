'use strict';
// The operations pages of the dashboard: Queue, Workers, Dead letters and
// History (#page=queue|workers|dead|history). They read /v1/queue,
// /v1/workers, /v1/deadletters and /v1/stats, and stay current through the
// page's one EventSource (app.js calls rvOpsEvent on every status event) plus
// light polling where no event exists (lease expiry, history minutes).
// Charts are inline SVG; all data reaches the DOM through textContent or
// attributes. Uses el(), api(), errorText() and shortAge() from app.js.

const ops = {
  page: null,     // the page shown, or null (the repositories view)
  timer: null,    // the polling timer
  soon: null,     // a refresh asked for by an event, debounced
  loading: false, // a load is in flight
  again: false,   // and another is wanted after it
  windowName: '1h',
  note: null,     // {text, kind} after a retry or discard
  deadFrom: 0,    // the dead-letter page shown starts at this index
  loads: 0,       // loads finished, for tests
};

const PAGES = {
  queue: {title: 'Queue', every: 2000, load: loadQueue},
  workers: {title: 'Workers', every: 2000, load: loadWorkers},
  dead: {title: 'Dead letters', every: 5000, load: loadDead},
  history: {title: 'History', every: 5000, load: loadHistory},
};

function opsPageFromHash() {
  const p = new URLSearchParams(location.hash.replace(/^#/, '')).get('page');
  return Object.prototype.hasOwnProperty.call(PAGES, p) ? p : null;
}

function showOps() {
  const page = opsPageFromHash();
  ops.page = page;
  clearInterval(ops.timer);
  ops.timer = null;
  document.querySelector('.layout').hidden = page !== null;
  $('ops').hidden = page === null;
  for (const a of document.querySelectorAll('#pages a')) {
    const cur = (a.dataset.page || null) === page;
    if (cur) a.setAttribute('aria-current', 'page'); else a.removeAttribute('aria-current');
  }
  if (!page) return;
  document.title = PAGES[page].title + ' · repoview';
  $('ops').replaceChildren(el('h2', {id: 'ops-title'}, PAGES[page].title),
    el('div', {id: 'ops-body', 'data-testid': 'ops-body'}, el('p', {class: 'muted'}, 'Loading…')));
  ops.note = null;
  ops.deadFrom = 0;
  refreshOps();
  ops.timer = setInterval(refreshOps, PAGES[page].every);
}

async function refreshOps() {
  if (!ops.page) return;
  if (ops.loading) { ops.again = true; return; }
  ops.loading = true;
  const page = ops.page;
  try {
    await PAGES[page].load();
  } catch (e) {
    if (ops.page === page) showOpsError('Cannot load: ' + e.message);
  } finally {
    ops.loading = false;
    ops.loads++;
    if (ops.again) { ops.again = false; refreshOps(); }
  }
}

// Called by app.js for every SSE status event: jobs moved. At most one
// load per 250 ms however many events arrive (a throttle, not a debounce,
// which a steady stream of events would postpone forever).
window.rvOpsEvent = function () {
  if ((ops.page !== 'queue' && ops.page !== 'workers') || ops.soon) return;
  ops.soon = setTimeout(() => { ops.soon = null; refreshOps(); }, 250);
};

function showOpsError(text) {
  const body = $('ops-body');
  if (body) body.replaceChildren(el('div', {class: 'msg bad', role: 'alert'}, text));
}

function fill(node) {
  if (!ops.page) return;
  const body = $('ops-body');
  const kids = [];
  if (ops.note) kids.push(el('div', {class: 'msg ' + ops.note.kind, role: 'status',
    'data-testid': 'ops-note'}, ops.note.text));
  kids.push(node);
  body.replaceChildren(...kids);
}

function table(testid, heads, rows, empty) {
  if (rows.length === 0) return el('p', {class: 'muted', 'data-testid': testid + '-empty'}, empty);
  return el('table', {class: 'ops-table', 'data-testid': testid},
    el('thead', null, el('tr', null, ...heads.map((h) => el('th', {scope: 'col'}, h)))),
    el('tbody', null, ...rows));
}

function age(seconds) {
  return typeof seconds === 'number' ? shortAge(seconds * 1000) : '—';
}

function when(iso) {
  const ms = parseTime(iso);
  if (ms === null) return '—';
  return new Date(ms).toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z');
}

function jobCells(j) {
  if (!j || j.undecodable) return [el('td', {colspan: 3, class: 'muted'}, 'undecodable job')];
  return [el('td', null, el('a', {href: '#repo=' + encodeURIComponent(j.repo)}, j.repo)),
    el('td', null, j.kind), el('td', null, j.reason)];
}

// ---- Queue -------------------------------------------------------------------

async function loadQueue() {
  const r = await api('GET', '/v1/queue');
  if (ops.page !== 'queue') return;
  if (!r.ok) { showOpsError(errorText(r)); return; }
  const q = r.data;
  const waiting = q.waiting.map((j) => el('tr', {'data-testid': 'waiting-row'},
    el('td', {class: 'num'}, j.position), ...jobCells(j), el('td', null, age(j.ageSeconds)),
    el('td', {class: 'num'}, j.attempt === undefined ? '' : j.attempt)));
  const running = q.running.map((j) => el('tr', {'data-testid': 'running-row'},
    el('td', {class: 'mono'}, j.worker), ...jobCells(j), el('td', null, age(j.runningSeconds))));
  fill(el('div', null,
    el('p', {class: 'ops-summary', 'data-testid': 'queue-summary'},
      `${q.waitingTotal} waiting · ${q.running.length} running · `,
      el('a', {href: '#page=dead'}, `${q.deadLetters} dead letter${q.deadLetters === 1 ? '' : 's'}`)),
    el('h3', null, 'Running'),
    table('running-table', ['Worker', 'Repo', 'Kind', 'Reason', 'Running for'], running,
      'Nothing is running.'),
    el('h3', null, q.waitingTotal > q.waiting.length
      ? `Waiting (first ${q.waiting.length} of ${q.waitingTotal}, next first)` : 'Waiting (next first)'),
    table('waiting-table', ['#', 'Repo', 'Kind', 'Reason', 'Waiting for', 'Attempt'], waiting,
      'The queue is empty.')));
}

// ---- Workers -------------------------------------------------------------------

async function loadWorkers() {
  const r = await api('GET', '/v1/workers');
  if (ops.page !== 'workers') return;
  if (!r.ok) { showOpsError(errorText(r)); return; }
  const rows = r.data.workers.map((w) => el('tr', {'data-testid': 'worker-row'},
    el('td', {class: 'mono'}, w.id), el('td', null, w.host || '—'),
    el('td', {class: 'num'}, w.pid === null ? '—' : w.pid),
    el('td', null, w.job && !w.job.undecodable ? `${w.job.repo} (${w.job.kind})` : 'idle'),
    el('td', {class: 'num'}, w.syncsDone), el('td', {class: 'num'}, w.syncsFailed),
    el('td', null, when(w.startedAt)), el('td', null, when(w.leaseExpiresAt))));
  fill(el('div', null,
    el('p', {class: 'ops-summary', 'data-testid': 'workers-summary'},
      `${rows.length} live worker${rows.length === 1 ? '' : 's'} (a worker leaves this list when its lease lapses)`),
    table('workers-table', ['Worker', 'Host', 'PID', 'Job', 'Done', 'Failed', 'Started', 'Lease until'],
      rows, 'No worker holds a lease.')));
}

// ---- Dead letters ------------------------------------------------------------------

async function actOnDead(entry, retry) {
  const path = `/v1/deadletters/${entry.index}${retry ? '/retry' : ''}?id=${entry.id}`;
  const r = await api(retry ? 'POST' : 'DELETE', path);
  const what = entry.entry && entry.entry.job ? entry.entry.job.repo : 'entry ' + entry.index;
  ops.note = r.ok
    ? {kind: 'ok', text: retry ? `Retried ${what}: ${r.data.outcome}.` : `Discarded ${what}.`}
    : {kind: 'bad', text: errorText(r)};
  refreshOps();
}

const DEAD_PAGE = 100;

function deadPage(from) {
  ops.deadFrom = Math.max(0, from);
  refreshOps();
}

async function loadDead() {
  let r = await api('GET', `/v1/deadletters?limit=${DEAD_PAGE}&cursor=${ops.deadFrom}`);
  // Entries went (retried, discarded elsewhere) and the page is past the
  // end now: show the last page there is.
  if (r.ok && ops.deadFrom > 0 && ops.deadFrom >= r.data.total) {
    ops.deadFrom = Math.max(0, Math.floor((r.data.total - 1) / DEAD_PAGE) * DEAD_PAGE);
    r = await api('GET', `/v1/deadletters?limit=${DEAD_PAGE}&cursor=${ops.deadFrom}`);
  }
  if (ops.page !== 'dead') return;
  if (!r.ok) { showOpsError(errorText(r)); return; }
  const rows = r.data.deadLetters.map((d) => {
    const e = d.entry || {};
    const job = e.job;
    return el('tr', {'data-testid': 'dead-row'},
      el('td', {class: 'num'}, d.index),
      el('td', null, job ? el('a', {href: '#repo=' + encodeURIComponent(job.repo)}, job.repo) : '—'),
      el('td', null, job ? job.kind : '—'),
      el('td', null, el('span', {class: 'badge b-bad', 'data-testid': 'error-class'}, e.reason || 'unknown'),
        e.worker ? el('span', {class: 'muted'}, ' worker ' + e.worker) : null),
      el('td', {'data-testid': 'error-time'}, when(e.at)),
      el('td', {class: 'actions'},
        job ? el('button', {type: 'button', 'data-testid': 'retry', onclick: () => actOnDead(d, true)}, 'Retry') : null,
        el('button', {type: 'button', 'data-testid': 'discard', onclick: () => actOnDead(d, false)}, 'Discard')));
  });
  const total = r.data.total;
  const shown = rows.length ? `${ops.deadFrom + 1}–${ops.deadFrom + rows.length} of ` : '';
  const pager = total > DEAD_PAGE ? el('p', {class: 'pager'},
    el('button', {type: 'button', 'data-testid': 'dead-newer', disabled: ops.deadFrom === 0 ? '' : null,
      onclick: () => deadPage(ops.deadFrom - DEAD_PAGE)}, 'Newer'),
    ' ',
    el('button', {type: 'button', 'data-testid': 'dead-older', disabled: r.data.nextCursor ? null : '',
      onclick: () => deadPage(Number(r.data.nextCursor))}, 'Older')) : null;
  fill(el('div', null,
    el('p', {class: 'ops-summary', 'data-testid': 'dead-summary'},
      `${shown}${total} dead letter${total === 1 ? '' : 's'}, newest first. Retry queues the job at the front.`),
    table('dead-table', ['#', 'Repo', 'Kind', 'Error', 'At', ''], rows, 'No dead letters.'),
    pager));
}

// ---- History --------------------------------------------------------------------

const SVGNS = 'http://www.w3.org/2000/svg';

function svg(tag, attrs, ...children) {
  const node = document.createElementNS(SVGNS, tag);
  for (const [k, v] of Object.entries(attrs || {})) if (v !== null && v !== undefined) node.setAttribute(k, String(v));
  for (const c of children) if (c) node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return node;
}

function niceMax(v) {
  if (!(v > 0)) return 1;
  const p = Math.pow(10, Math.floor(Math.log10(v)));
  for (const m of [1, 2, 2.5, 5, 10]) if (v <= m * p) return m * p;
  return 10 * p;
}

// A line chart of series [{name, cls, values}] over points' minutes, with
// labelled axes and a legend.
function chart(testid, title, yLabel, points, series) {
  const W = 720, H = 220, L = 56, R = 12, T = 12, B = 40;
  const n = points.length;
  const all = series.flatMap((s) => s.values.filter((v) => typeof v === 'number'));
  const ymax = niceMax(Math.max(0, ...all));
  const x = (i) => L + (n <= 1 ? 0 : (i * (W - L - R)) / (n - 1));
  const y = (v) => T + (H - T - B) * (1 - v / ymax);
  const g = svg('svg', {viewBox: `0 0 ${W} ${H}`, class: 'chart', role: 'img', 'aria-label': title,
    'data-testid': testid});
  g.append(svg('title', null, title));
  // 25-based maxima split in fives so the ticks stay whole numbers.
  const steps = String(ymax).startsWith('25') ? 5 : 4;
  for (let k = 0; k <= steps; k++) {
    const v = (ymax * k) / steps;
    g.append(svg('line', {x1: L, x2: W - R, y1: y(v), y2: y(v), class: 'grid'}));
    g.append(svg('text', {x: L - 6, y: y(v) + 4, 'text-anchor': 'end', class: 'tick', 'data-axis': 'y'},
      Number.isInteger(v) ? v : v.toFixed(1)));
  }
  const every = Math.max(1, Math.ceil(n / 6));
  for (let i = 0; i < n; i += every) {
    const t = new Date(parseTime(points[i].minute));
    const label = t.toISOString().slice(11, 16);
    g.append(svg('text', {x: x(i), y: H - B + 16, 'text-anchor': 'middle', class: 'tick', 'data-axis': 'x'}, label));
  }
  g.append(svg('line', {x1: L, x2: W - R, y1: H - B, y2: H - B, class: 'axis'}));
  g.append(svg('line', {x1: L, x2: L, y1: T, y2: H - B, class: 'axis'}));
  g.append(svg('text', {x: (L + W - R) / 2, y: H - 4, 'text-anchor': 'middle', class: 'axis-label',
    'data-testid': 'x-label'}, 'time (UTC, per minute)'));
  g.append(svg('text', {x: 12, y: (T + H - B) / 2, 'text-anchor': 'middle', class: 'axis-label',
    transform: `rotate(-90 12 ${(T + H - B) / 2})`, 'data-testid': 'y-label'}, yLabel));
  for (const s of series) {
    let d = '';
    s.values.forEach((v, i) => {
      if (typeof v !== 'number') return;
      d += (d && typeof s.values[i - 1] === 'number' ? 'L' : 'M') + x(i).toFixed(1) + ' ' + y(v).toFixed(1);
    });
    g.append(svg('path', {d, class: 'series ' + s.cls, 'data-series': s.name}));
    s.values.forEach((v, i) => {
      if (typeof v === 'number' && v > 0) {
        g.append(svg('circle', {cx: x(i), cy: y(v), r: 2.5, class: 'dot ' + s.cls, 'data-point': s.name},
          svg('title', null, `${points[i].minute.slice(11, 16)} ${s.name}: ${v}`)));
      }
    });
  }
  const legend = el('ul', {class: 'legend', 'data-testid': testid + '-legend'},
    ...series.map((s) => el('li', null, el('span', {class: 'swatch ' + s.cls}), s.name)));
  return el('figure', {class: 'chart-box'}, el('figcaption', null, title), g, legend);
}

function sumKinds(o) {
  return o ? Object.values(o).reduce((a, b) => a + (typeof b === 'number' ? b : 0), 0) : 0;
}

async function loadHistory() {
  const r = await api('GET', '/v1/stats?window=' + encodeURIComponent(ops.windowName));
  if (ops.page !== 'history') return;
  if (!r.ok) { showOpsError(errorText(r)); return; }
  const pts = r.data.points;
  const picker = el('label', null, 'Window ', el('select', {'data-testid': 'window', onchange: (ev) => {
    ops.windowName = ev.target.value;
    refreshOps();
  }}, ...['5m', '15m', '1h', '6h', '24h'].map((w) => el('option', {value: w, selected: w === ops.windowName}, w))));
  const total = pts.reduce((a, p) => a + sumKinds(p.done) + sumKinds(p.failed), 0);
  const budgets = r.data.githubBudget.map((b) => el('tr', {'data-testid': 'budget-row'},
    el('td', {class: 'mono'}, b.token), el('td', {class: 'num'}, b.remaining === null ? '—' : b.remaining),
    el('td', {class: 'num'}, b.limit === null ? '—' : b.limit), el('td', null, b.held ? 'held' : '')));
  fill(el('div', {'data-points': pts.length, 'data-syncs': total, 'data-testid': 'history'},
    el('p', {class: 'ops-summary'}, picker, ` ${total} syncs ended in the window.`),
    chart('chart-syncs', 'Syncs per minute', 'syncs', pts, [
      {name: 'done', cls: 's-done', values: pts.map((p) => sumKinds(p.done))},
      {name: 'failed', cls: 's-failed', values: pts.map((p) => sumKinds(p.failed))}]),
    chart('chart-queue', 'Queue depth (largest each minute)', 'jobs', pts, [
      {name: 'queue depth', cls: 's-queue', values: pts.map((p) => p.queueDepth)}]),
    chart('chart-duration', 'Sync duration', 'ms', pts, [
      {name: 'p50', cls: 's-p50', values: pts.map((p) => p.p50Ms)},
      {name: 'p95', cls: 's-p95', values: pts.map((p) => p.p95Ms)}]),
    el('h3', null, 'GitHub budget per token'),
    table('budget-table', ['Token', 'Remaining', 'Limit', ''], budgets, 'No GitHub token has been used yet.')));
}

window.addEventListener('hashchange', showOps);
showOps();
