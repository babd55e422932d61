// Checks HTTP answers against src/api/openapi.json with ajv (JSON Schema
// 2020-12, the dialect of OpenAPI 3.1), for the tests that replay what the
// contract tests received (recorded.test.mjs), hit the API themselves
// (live.test.mjs) or drive the JS client (tests/client).
//
// The document lets clients ignore members they do not know; the tests do
// not: every object schema that lists its properties is checked here as if
// it said additionalProperties: false, so a member the server adds without
// documenting it fails.
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { parseEventBlock } from '../../clients/js/repoview-client.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(path.join(here, '..', 'package.json'));
const { Ajv2020 } = require('ajv/dist/2020.js');
const addFormats = require('ajv-formats');

export const DOC_PATH = path.join(here, '..', '..', 'src', 'api', 'openapi.json');
const DOC_ID = 'https://repoview.invalid/openapi.json';

// Adds additionalProperties: false to every object schema with properties
// that says nothing about other members (in place).
function closeObjects(node) {
  if (Array.isArray(node)) {
    node.forEach(closeObjects);
    return;
  }
  if (!node || typeof node !== 'object') return;
  if (node.properties && typeof node.properties === 'object' &&
      !('additionalProperties' in node) && !('unevaluatedProperties' in node)) {
    node.additionalProperties = false;
  }
  for (const [k, v] of Object.entries(node)) {
    // Property names are not schemas, but their values are.
    if (k === 'properties') Object.values(v).forEach(closeObjects);
    else closeObjects(v);
  }
}

// A JSON pointer segment.
const esc = (s) => s.replace(/~/g, '~0').replace(/\//g, '~1');

// The object a local $ref names (components/responses, parameters).
function deref(doc, obj) {
  while (obj && obj.$ref) {
    obj = obj.$ref.replace(/^#\//, '').split('/')
      .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'))
      .reduce((o, k) => o[k], doc);
  }
  return obj;
}

// Parses a text/event-stream body into {event, id, data} items (data parsed
// as JSON; left as text when it is not JSON), with the JS client's parser
// of one event. Comments and retry: are not events.
export function parseEventStream(text) {
  return text.split(/\r?\n\r?\n/).map((block) => parseEventBlock(block)).filter(Boolean);
}

export function loadDocument() {
  return JSON.parse(fs.readFileSync(DOC_PATH, 'utf8'));
}

// The checker: check(answer) for answer {method, url, status, contentType,
// body} returns {op, errors}: the operation it matched ("GET /v1/repos",
// or a dispatcher answer such as "404 unknown path") and what is wrong
// with it (empty when it is as documented).
export function makeChecker(doc = loadDocument()) {
  const strict = structuredClone(doc);
  closeObjects(strict.components);
  closeObjects(strict.paths);
  strict.$id = DOC_ID;
  const ajv = new Ajv2020({ strict: false, allErrors: true, validateFormats: true });
  addFormats(ajv);
  ajv.addSchema(strict);
  const compiled = new Map();
  const validator = (pointer) => {
    if (!compiled.has(pointer)) compiled.set(pointer, ajv.compile({ $ref: DOC_ID + '#' + pointer }));
    return compiled.get(pointer);
  };

  // Paths by specificity: literal segments before {templates}.
  const routes = Object.keys(doc.paths).map((p) => ({
    template: p,
    re: new RegExp('^' + p.replace(/[.]/g, '\\.').replace(/\{[^}]+\}/g, '[^/]+') + '$'),
    literal: !p.includes('{'),
  })).sort((a, b) => b.literal - a.literal);
  const errorPointer = '/components/schemas/Error';

  function checkError(body, errors) {
    let parsed;
    try { parsed = JSON.parse(body); } catch { errors.push('the error body is not JSON'); return; }
    const v = validator(errorPointer);
    if (!v(parsed)) errors.push('error body: ' + ajv.errorsText(v.errors));
  }

  function check(a) {
    const errors = [];
    const url = new URL(a.url);
    const method = a.method.toLowerCase();
    const route = routes.find((r) => r.re.test(url.pathname));
    const type = (a.contentType || '').split(';')[0].trim().toLowerCase();
    if (!route) {
      // 404, or the dispatcher's 400 for a path it cannot read (dot
      // segments, which the recorded URL shows resolved).
      if (a.status !== 404 && a.status !== 400) errors.push(`${a.method} ${url.pathname}: an undocumented path answered ${a.status}`);
      else if (method !== 'head') checkError(a.body, errors);
      return { op: `${a.status} unknown path`, errors };
    }
    const item = doc.paths[route.template];
    if (method === 'options') {
      // The CORS pre-flight of any path (info.description).
      if (a.status !== 204 && a.status >= 200 && a.status < 400) errors.push(`OPTIONS answered ${a.status}`);
      return { op: 'OPTIONS (pre-flight)', errors };
    }
    const opMethod = method === 'head' ? 'get' : method;
    const op = item[opMethod];
    if (!op || (method === 'head' && op.responses['200']?.content?.['text/event-stream'])) {
      if (a.status !== 405) errors.push(`${a.method} ${route.template}: no such operation, yet it answered ${a.status}`);
      else if (method !== 'head') checkError(a.body, errors);
      return { op: `405 ${route.template}`, errors };
    }
    const name = `${opMethod.toUpperCase()} ${route.template}`;
    const status = String(a.status);
    const response = deref(doc, op.responses[status] || op.responses[status[0] + 'XX'] || op.responses.default);
    if (!response) {
      errors.push(`${a.method} ${url.pathname}: status ${a.status} is not documented for ${name}`);
      return { op: name, errors };
    }
    if (method === 'head' || a.status === 304 || a.status === 204) {
      if (a.body && method !== 'head') errors.push(`${name} ${a.status}: a body where none is documented`);
      return { op: name, errors };
    }
    if (!response.content) {
      if (a.body) errors.push(`${name} ${a.status}: a body where none is documented`);
      return { op: name, errors };
    }
    if (!(type in response.content)) {
      errors.push(`${name} ${a.status}: Content-Type ${type || '(none)'} is not documented (${Object.keys(response.content).join(', ')})`);
      return { op: name, errors };
    }
    if (a.binary) return { op: name, errors };
    // Events recorded one by one as a client saw them (tests/sse/record.mjs).
    if (Array.isArray(a.events)) {
      const v = validator(`${`/paths/${esc(route.template)}/${opMethod}/responses/${status}`}/content/${esc(type)}/schema`);
      if (!v(a.events)) errors.push(`${name}: events: ${ajv.errorsText(v.errors)}\n  ${JSON.stringify(a.events).slice(0, 400)}`);
      return { op: name, errors };
    }
    const responsePointer = op.responses[status]?.$ref
      ? op.responses[status].$ref.slice(1)
      : `/paths/${esc(route.template)}/${opMethod}/responses/${status}`;
    const pointer = `${responsePointer}/content/${esc(type)}/schema`;
    if (type === 'application/json') {
      let parsed;
      try { parsed = JSON.parse(a.body); } catch {
        errors.push(`${name} ${a.status}: the body is not JSON`);
        return { op: name, errors };
      }
      const v = validator(pointer);
      if (!v(parsed)) errors.push(`${name} ${a.status}: ${ajv.errorsText(v.errors)}\n  body: ${a.body.slice(0, 400)}`);
    } else if (type === 'text/event-stream') {
      const v = validator(pointer);
      const events = parseEventStream(a.body || '');
      if (!v(events)) errors.push(`${name}: events: ${ajv.errorsText(v.errors)}\n  ${JSON.stringify(events).slice(0, 400)}`);
    }
    return { op: name, errors };
  }

  // Every operation of the document, as check() names them.
  const operations = [];
  for (const [p, item] of Object.entries(doc.paths)) {
    for (const m of ['get', 'post', 'delete', 'put', 'patch']) if (item[m]) operations.push(`${m.toUpperCase()} ${p}`);
  }
  // Checks a list of parsed SSE events against an operation's stream schema.
  function checkEvents(template, events) {
    const v = validator(`/paths/${esc(template)}/get/responses/200/content/text~1event-stream/schema`);
    return v(events) ? [] : [ajv.errorsText(v.errors)];
  }
  return { check, checkEvents, operations };
}
