// Every answer the contract tests received (tests/support/rvtest.c records
// them into RV_RECORD_FILE, one file per test program) checked against
// src/api/openapi.json: each status must be documented for its operation,
// and each JSON body and event stream must match its schema.
//
//   node recorded.test.mjs MIN_ANSWERS FILE...
//
// Fails when a file is missing or empty (the test that writes it recorded
// nothing: recording broke), or fewer than MIN_ANSWERS were checked.
import fs from 'node:fs';
import path from 'node:path';
import { makeChecker } from './oas.mjs';

const [min, ...files] = process.argv.slice(2);
if (!min || files.length === 0) {
  console.error('usage: recorded.test.mjs MIN_ANSWERS FILE...');
  process.exit(2);
}
const { check, operations } = makeChecker();
const problems = [];
const seen = new Map();
let checked = 0;
for (const file of files) {
  let lines = [];
  try {
    lines = fs.readFileSync(file, 'utf8').split('\n').filter(Boolean);
  } catch (e) {
    problems.push(`${path.basename(file)}: ${e.code === 'ENOENT' ? 'missing' : e.message}`);
    continue;
  }
  if (lines.length === 0) problems.push(`${path.basename(file)}: no answer recorded`);
  for (const line of lines) {
    const answer = JSON.parse(line);
    const { op, errors } = check(answer);
    checked++;
    seen.set(op, (seen.get(op) || 0) + 1);
    for (const e of errors) problems.push(`${path.basename(file, '.jsonl')}: ${e}`);
  }
}
const unseen = operations.filter((o) => !seen.has(o));
console.log(`checked ${checked} answers of ${files.length} test programs; ` +
  `${operations.length - unseen.length} of ${operations.length} operations seen`);
if (unseen.length) console.log('not seen here (live.test.mjs covers them):', unseen.join(', '));
if (checked < Number(min)) problems.push(`only ${checked} answers checked, expected at least ${min}`);
// Each problem once, with how often it came.
const counts = new Map();
for (const p of problems) counts.set(p, (counts.get(p) || 0) + 1);
for (const [p, n] of counts) console.error('FAIL', n > 1 ? `(${n}x)` : '', p);
process.exit(problems.length ? 1 : 0);
