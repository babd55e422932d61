// The repository listings of the fake GitHub (imported by server.mjs):
//
//   GET /installation/repositories?per_page=N&page=P   (installation token)
//       {"total_count","repository_selection":"all","repositories":[...]}
//   GET /orgs/{org}/repos?per_page=N&page=P   and   /users/{user}/repos
//       [...]  (the PAT, or no token: public listing)
//
// Like GitHub's: per_page at most 100 (default 30), pages from 1, a Link
// header with next/last (and prev/first after page 1) of absolute URLs, a
// weak ETag of the page's body, and If-None-Match answered 304 with no
// body, not counted against the budget. Repository objects are the
// recorded `repository` payload of @octokit/webhooks-examples with id,
// name, full_name, owner.login, archived, clone_url and html_url set.
//
// Test control (POST /_control), per owner:
//   {"orgRepos":{"owner":"acme","count":250,"cloneUrl":"file:///tmp/r/{name}.git",
//                "firstId":1000}}   replace the owner's repositories
//   {"orgRepoOp":{"owner":"acme","op":"add","name":"new"}}
//   {"orgRepoOp":{"owner":"acme","op":"remove","name":"x"}}
//   {"orgRepoOp":{"owner":"acme","op":"rename","name":"x","to":"y"}}
//   {"orgRepoOp":{"owner":"acme","op":"archive","name":"x"}}
//   {"orgRepoOp":{"owner":"acme","op":"transfer","name":"x","to":"other"}}
//   {"listingStatus":{"owner":"acme","page":2,"status":502}}  that page
//        answers status (0 lifts it)
//   {"orgRepoOp":{"owner":"acme","op":"renameOwner","to":"acme-inc"}}  the
//        owner's login changes on every repository (an org renamed)
//   {"linkMode":{"owner":"acme","mode":"duplicate"|"long"|""}}  the Link
//        header is sent twice, or padded past 4 KiB (a broken proxy)
//   {"removeAfterPage":{"owner":"acme","page":1,"name":"x"}}  once that
//        page has been served, the repository goes (a listing that shifts
//        while it is read)
// GET /_listing?owner=acme  the owner's repositories as the fake holds them.

import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const examples = require('@octokit/webhooks-examples');
const template = examples.find((e) => e.name === 'repository').examples[0].repository;

const owners = new Map(); // lower(owner) -> {login, repos: [...], status: Map}
let nextId = 500000;

function ownerState(login) {
  const key = String(login).toLowerCase();
  if (!owners.has(key)) owners.set(key, { login: String(login), repos: [], status: new Map() });
  return owners.get(key);
}

function makeRepo(st, name, id, cloneUrl) {
  const r = structuredClone(template);
  r.id = id;
  r.node_id = Buffer.from(`010:Repository${id}`).toString('base64');
  r.name = name;
  r.full_name = `${st.login}/${name}`;
  r.owner = { ...r.owner, login: st.login };
  r.archived = false;
  r.disabled = false;
  r.private = false;
  r.html_url = `https://github.com/${st.login}/${name}`;
  r.cloneTemplate = cloneUrl || `https://github.com/${st.login}/{name}.git`;
  r.clone_url = r.cloneTemplate.replaceAll('{name}', name);
  return r;
}

function findRepo(st, name) {
  const i = st.repos.findIndex((r) => r.name.toLowerCase() === String(name).toLowerCase());
  if (i < 0) throw new Error(`no repository ${name} of ${st.login}`);
  return i;
}

// Applies a control message; true when it was one of ours.
export function listingControl(c) {
  let handled = false;
  if (c.orgRepos) {
    const st = ownerState(c.orgRepos.owner);
    const first = Number(c.orgRepos.firstId || nextId);
    const n = Number(c.orgRepos.count || 0);
    st.repos = [];
    for (let i = 0; i < n; i++)
      st.repos.push(makeRepo(st, `repo-${String(i).padStart(3, '0')}`, first + i, c.orgRepos.cloneUrl));
    nextId = Math.max(nextId, first + n);
    st.cloneUrl = c.orgRepos.cloneUrl;
    handled = true;
  }
  if (c.orgRepoOp) {
    const { owner, op, name, to } = c.orgRepoOp;
    const st = ownerState(owner);
    if (op === 'add') st.repos.push(makeRepo(st, name, nextId++, st.cloneUrl));
    else if (op === 'remove') st.repos.splice(findRepo(st, name), 1);
    else if (op === 'archive') st.repos[findRepo(st, name)].archived = true;
    else if (op === 'rename') {
      const r = st.repos[findRepo(st, name)];
      r.name = to;
      r.full_name = `${st.login}/${to}`;
      r.html_url = `https://github.com/${st.login}/${to}`;
      r.clone_url = r.cloneTemplate.replaceAll('{name}', to);
    } else if (op === 'transfer') {
      const [r] = st.repos.splice(findRepo(st, name), 1);
      const dest = ownerState(to);
      r.full_name = `${dest.login}/${r.name}`;
      r.owner = { ...r.owner, login: dest.login };
      dest.repos.push(r);
    } else if (op === 'renameOwner') {
      st.login = to;
      for (const r of st.repos) {
        r.owner = { ...r.owner, login: to };
        r.full_name = `${to}/${r.name}`;
      }
    } else throw new Error(`unknown op ${op}`);
    handled = true;
  }
  if (c.linkMode) {
    ownerState(c.linkMode.owner).linkMode = String(c.linkMode.mode || '');
    handled = true;
  }
  if (c.removeAfterPage) {
    ownerState(c.removeAfterPage.owner).removeAfter = {
      page: Number(c.removeAfterPage.page), name: String(c.removeAfterPage.name),
    };
    handled = true;
  }
  if (c.listingStatus) {
    const st = ownerState(c.listingStatus.owner);
    if (Number(c.listingStatus.status)) st.status.set(Number(c.listingStatus.page), Number(c.listingStatus.status));
    else st.status.delete(Number(c.listingStatus.page));
    handled = true;
  }
  return handled;
}

export function listingReset() {
  owners.clear();
}

const clean = (r) => {
  const { cloneTemplate, ...rest } = r;
  return rest;
};

// Answers a listing request; false when path is not one. who is the
// server's view of the bearer: {kind, installation}; ownerOfInstallation
// maps an installation id to its owner's login (or undefined).
export function listing(req, res, path, query, who, ownerOfInstallation, ctx) {
  let owner;
  let installation = false;
  if (path === '/installation/repositories') {
    if (who.kind !== 'installation-any') {
      ctx.reply(401, { message: 'Bad credentials', documentation_url: ctx.docs });
      return true;
    }
    owner = ownerOfInstallation(who.installation);
    installation = true;
  } else {
    const m = /^\/(?:orgs|users)\/([^/]+)\/repos$/.exec(path);
    if (!m) return false;
    if (who.kind === 'other' || who.kind === 'bad-installation') {
      ctx.reply(401, { message: 'Bad credentials', documentation_url: ctx.docs });
      return true;
    }
    owner = decodeURIComponent(m[1]);
    if (!owners.has(String(owner).toLowerCase())) {
      ctx.reply(404, { message: 'Not Found', documentation_url: ctx.docs });
      return true;
    }
  }
  const st = ownerState(owner || '');
  const perPage = Math.min(100, Math.max(1, Number(query.get('per_page') || 30)));
  const page = Math.max(1, Number(query.get('page') || 1));
  ctx.rec.page = page;
  ctx.rec.owner = st.login.toLowerCase();
  ctx.rec.installation = installation;
  const forced = st.status.get(page);
  if (forced) {
    ctx.reply(forced, { message: 'Server Error', documentation_url: ctx.docs });
    return true;
  }
  const lastPage = Math.max(1, Math.ceil(st.repos.length / perPage));
  const slice = st.repos.slice((page - 1) * perPage, page * perPage).map(clean);
  const body = installation
    ? { total_count: st.repos.length, repository_selection: 'all', repositories: slice }
    : slice;
  const text = JSON.stringify(body);
  const etag = `W/"${createHash('sha256').update(text).digest('hex').slice(0, 32)}"`;
  const base = `http://${req.headers.host}${path}`;
  const link = (p) => {
    const q = new URLSearchParams(query);
    q.set('per_page', String(perPage));
    q.set('page', String(p));
    return `${base}?${q}`;
  };
  const links = [];
  if (page < lastPage) links.push(`<${link(page + 1)}>; rel="next"`, `<${link(lastPage)}>; rel="last"`);
  if (page > 1) links.push(`<${link(page - 1)}>; rel="prev"`, `<${link(1)}>; rel="first"`);
  const headers = { etag };
  if (links.length) headers.link = links.join(', ');
  if (links.length && st.linkMode === 'duplicate') headers.link = [headers.link, headers.link];
  if (links.length && st.linkMode === 'long') headers.link += `, <${base}?${'x'.repeat(4096)}>; rel="other"`;
  if (st.removeAfter && st.removeAfter.page === page) {
    const { name } = st.removeAfter;
    st.removeAfter = null;
    res.once('finish', () => st.repos.splice(findRepo(st, name), 1));
  }
  if (req.headers['if-none-match'] === etag) {
    ctx.rec.status = 304;
    ctx.notModified(headers);
    return true;
  }
  ctx.reply(200, body, headers);
  return true;
}

export function listingOf(owner) {
  const st = owners.get(String(owner).toLowerCase());
  return st ? st.repos.map((r) => ({ id: r.id, name: r.name, archived: r.archived, owner: r.owner.login })) : [];
}
