// Records the server-sent events of one URL as JSON lines, the way a
// browser's EventSource sees them (tests/integration/test_api_sse.c reads
// the file while it drives repoview).
//
//   node tests/sse/record.mjs URL OUTFILE
//
// Each line: {"type":"open"}, {"type":"error"}, or
// {"type":<event name>,"id":<lastEventId>,"data":<parsed data>}.
// Runs until it is sent SIGTERM.
import { appendFileSync } from 'node:fs';
import { EventSource } from 'eventsource';

const [url, out] = process.argv.slice(2);
if (!url || !out) {
  console.error('usage: record.mjs URL OUTFILE');
  process.exit(2);
}
const write = (obj) => appendFileSync(out, JSON.stringify(obj) + '\n');
// With RV_RECORD_FILE (set by CMake, emptied by the test program at its
// start), each event also goes there for the OpenAPI check (tests/openapi).
const record = process.env.RV_RECORD_FILE
  ? (event) => appendFileSync(process.env.RV_RECORD_FILE, JSON.stringify({ method: 'GET', url,
    status: 200, contentType: 'text/event-stream', events: [event] }) + '\n')
  : () => {};
const es = new EventSource(url);
es.addEventListener('open', () => write({ type: 'open' }));
es.addEventListener('error', () => write({ type: 'error' }));
for (const name of ['snapshot', 'snapshot-needed', 'status', 'projection', 'removed']) {
  es.addEventListener(name, (ev) => {
    write({ type: name, id: ev.lastEventId, data: JSON.parse(ev.data) });
    record({ event: name, id: ev.lastEventId, data: JSON.parse(ev.data) });
  });
}
// eventsource unrefs its reconnect timer, so without this the process
// would exit when the server ends the stream instead of reconnecting.
const keepAlive = setInterval(() => {}, 1 << 30);
process.on('SIGTERM', () => {
  clearInterval(keepAlive);
  es.close();
  process.exit(0);
});
