// Sends log records through a real Loki client, winston + winston-loki, to a
// push endpoint, then exits:
//
//   node winston_send.mjs <host, e.g. http://127.0.0.1:PORT> <proto|json> <records.json>
//
// records.json: [{"ts_ms": 1700000000123, "line": "...", "labels": {"job": "x", ...},
//                 "level": "info"}], the transport's tenant header in X-Scope-OrgID
// from the environment variable LOKI_TENANT (when set). The line is the record's
// message as it is (a custom format), the labels are winston-loki's own: `level`
// from the winston level, the rest from the call's `labels`.
import fs from 'node:fs';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const winston = require('winston');
const LokiTransport = require('winston-loki');

const [host, mode, file] = process.argv.slice(2);
const records = JSON.parse(fs.readFileSync(file, 'utf8'));
const headers = process.env.LOKI_TENANT ? { 'X-Scope-OrgID': process.env.LOKI_TENANT } : {};
let failed = null;
const transport = new LokiTransport({
  host,
  json: mode === 'json',
  batching: true,
  interval: 0.2,
  replaceTimestamp: false,
  gracefulShutdown: false,
  headers,
  timeout: 10000,
  format: winston.format.printf((info) => info.message),
  onConnectionError: (err) => { failed = err; },
});
const logger = winston.createLogger({ level: 'debug', transports: [transport] });
for (const r of records) {
  logger.log({ level: r.level, message: r.line, labels: r.labels, timestamp: new Date(r.ts_ms).toISOString() });
}
const timer = setTimeout(() => { console.error('winston-loki did not flush in 20s'); process.exit(2); }, 20000);
await new Promise((resolve) => setTimeout(resolve, 50));
await transport.flush();
clearTimeout(timer);
await transport.close();
if (failed) {
  console.error('winston-loki failed: ' + failed);
  process.exit(1);
}
console.log(JSON.stringify({ sent: records.length, json: transport.batcher.options.json }));
process.exit(0);
