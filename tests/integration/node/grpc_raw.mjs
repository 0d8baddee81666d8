// grpc_raw.mjs - makes unary gRPC calls with raw message bytes through
// @grpc/grpc-js, for test_otlp_grpc.py to check how the receiver answers cases
// that the OpenTelemetry exporters never produce (bad messages, unknown methods,
// oversized messages, a full queue).
//
//   node grpc_raw.mjs --target 127.0.0.1:4317 --cases CASES.json --out RESULTS.json
//
// CASES.json is a list of {name, path, hex, gzip?, repeat?}: `hex` is the request
// message, sent as is (grpc-js frames it, and compresses it with gzip when `gzip`
// is true). With `repeat: N` the call is made up to N times, one after another,
// until one does not answer OK. RESULTS.json gets, per case, {name, calls, code,
// details, metadata} where metadata maps each trailer key to its value (binary
// "-bin" values as hex). Every call has a deadline; the whole run has a watchdog.

import { readFileSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

import * as grpc from '@grpc/grpc-js';

const WATCHDOG_MS = 60000;
const CALL_DEADLINE_MS = 10000;

const { values: opts } = parseArgs({
  options: { target: { type: 'string' }, cases: { type: 'string' }, out: { type: 'string' } },
});
if (!opts.target || !opts.cases || !opts.out) {
  console.error('usage: grpc_raw.mjs --target HOST:PORT --cases FILE --out FILE');
  process.exit(2);
}
const watchdog = setTimeout(() => {
  console.error(`grpc_raw.mjs: not done after ${WATCHDOG_MS} ms, giving up`);
  process.exit(3);
}, WATCHDOG_MS);

const identity = (b) => b;
const clients = {};
// One client (and so one HTTP/2 connection) per compression setting.
function clientFor(gzip) {
  const key = gzip ? 'gzip' : 'identity';
  clients[key] ??= new grpc.Client(opts.target, grpc.credentials.createInsecure(), {
    'grpc.default_compression_algorithm': gzip ? 2 : 0, // grpc.compressionAlgorithms
    'grpc.max_send_message_length': -1,
  });
  return clients[key];
}

function call(client, path, message) {
  return new Promise((resolve) => {
    const deadline = new Date(Date.now() + CALL_DEADLINE_MS);
    const done = (err, status) => {
      const metadata = {};
      for (const [k, v] of Object.entries((status ?? err)?.metadata?.getMap() ?? {}))
        metadata[k] = Buffer.isBuffer(v) ? v.toString('hex') : String(v);
      resolve({ code: err ? err.code : 0, details: err ? err.details : '', metadata });
    };
    let status;
    const c = client.makeUnaryRequest(path, identity, identity, message, new grpc.Metadata(), { deadline },
      (err) => setImmediate(() => done(err, status)));
    c.on('status', (s) => { status = s; });
  });
}

const results = [];
for (const c of JSON.parse(readFileSync(opts.cases, 'utf8'))) {
  const client = clientFor(Boolean(c.gzip));
  const message = Buffer.from(c.hex, 'hex');
  let r;
  let calls = 0;
  do {
    r = await call(client, c.path, message);
    calls++;
  } while (r.code === 0 && calls < (c.repeat ?? 1));
  results.push({ name: c.name, calls, ...r });
  console.log(`${c.name}: ${calls} call(s), last ${grpc.status[r.code] ?? r.code} ${r.details}`);
}
for (const client of Object.values(clients)) client.close();
writeFileSync(opts.out, JSON.stringify(results, null, 1));
clearTimeout(watchdog);
process.exit(0);
