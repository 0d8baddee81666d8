#!/usr/bin/env node
'use strict';
/*
 * An OTLP/gRPC sink on @grpc/grpc-js, for the otlp exporter's integration tests.
 *
 *   node grpc_sink.js serve --proto-dir proto [--port 0]
 *       Serves the Trace/Metrics/Logs Export services on 127.0.0.1 and a control
 *       HTTP server on 127.0.0.1; prints one line "READY <grpc port> <control port>".
 *       Control: GET /requests (every request so far, normalized, with metadata),
 *       POST /behavior {"code": 14, "message": "...", "count": 3, "retryDelayMs": 2000}
 *       (answer the next `count` calls with that gRPC status, -1 for all; with
 *       retryDelayMs the status carries a google.rpc.RetryInfo), POST /reset.
 *       Exits when stdin closes, so that it never outlives the test.
 *
 *   node grpc_sink.js decode --proto-dir proto < list.json
 *       Reads [{"signal": "traces", "body": "<base64 protobuf>"}, ...] and writes the
 *       decoded, normalized requests as a JSON list (used for OTLP/HTTP protobuf bodies).
 *
 * Normalized means OTLP/JSON-like: lowerCamelCase keys, 64-bit integers as strings,
 * enums as numbers, trace/span IDs as hex, other bytes as base64, unset fields left out.
 */
const fs = require('fs');
const http = require('http');
const path = require('path');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');

const SERVICES = {
  traces: ['opentelemetry/proto/collector/trace/v1/trace_service.proto',
    'opentelemetry.proto.collector.trace.v1.TraceService'],
  metrics: ['opentelemetry/proto/collector/metrics/v1/metrics_service.proto',
    'opentelemetry.proto.collector.metrics.v1.MetricsService'],
  logs: ['opentelemetry/proto/collector/logs/v1/logs_service.proto',
    'opentelemetry.proto.collector.logs.v1.LogsService'],
};
const ID_KEYS = new Set(['traceId', 'spanId', 'parentSpanId']);
const LOAD_OPTIONS = {keepCase: false, longs: String, enums: Number, bytes: String,
  defaults: false, oneofs: false};

function args() {
  const out = {mode: process.argv[2], port: 0, protoDir: null};
  for (let i = 3; i < process.argv.length; i += 2) {
    const k = process.argv[i];
    const v = process.argv[i + 1];
    if (k === '--proto-dir') out.protoDir = v;
    else if (k === '--port') out.port = Number(v);
    else throw new Error('unknown argument ' + k);
  }
  if (!out.protoDir) throw new Error('--proto-dir is required');
  return out;
}

function load(protoDir) {
  const files = Object.values(SERVICES).map((s) => s[0]);
  return protoLoader.loadSync(files, Object.assign({includeDirs: [protoDir]}, LOAD_OPTIONS));
}

/* Trace and span IDs as hex, as OTLP/JSON writes them; everything else as decoded. */
function normalize(v) {
  if (Array.isArray(v)) return v.map(normalize);
  if (v && typeof v === 'object') {
    const o = {};
    for (const [k, x] of Object.entries(v)) {
      o[k] = ID_KEYS.has(k) && typeof x === 'string' ? Buffer.from(x, 'base64').toString('hex')
        : normalize(x);
    }
    return o;
  }
  return v;
}

/* Protobuf varint and length-delimited field, for the small google.rpc messages. */
function varint(n) {
  const out = [];
  while (n > 127) {
    out.push((n & 127) | 128);
    n = Math.floor(n / 128);
  }
  out.push(n);
  return Buffer.from(out);
}
function field(num, wire, payload) {
  const tag = varint(num * 8 + wire);
  if (wire === 0) return Buffer.concat([tag, varint(payload)]);
  return Buffer.concat([tag, varint(payload.length), payload]);
}

/* google.rpc.Status{code, message, details: [Any{RetryInfo{retry_delay}}]}. */
function statusWithRetryInfo(code, message, delayMs) {
  const seconds = Math.floor(delayMs / 1000);
  const nanos = (delayMs % 1000) * 1000000;
  let duration = Buffer.alloc(0);
  if (seconds) duration = Buffer.concat([duration, field(1, 0, seconds)]);
  if (nanos) duration = Buffer.concat([duration, field(2, 0, nanos)]);
  const retryInfo = field(1, 2, duration);
  const any = Buffer.concat([
    field(1, 2, Buffer.from('type.googleapis.com/google.rpc.RetryInfo')), field(2, 2, retryInfo)]);
  return Buffer.concat([field(1, 0, code), field(2, 2, Buffer.from(message)), field(3, 2, any)]);
}

function serve(opts) {
  const def = load(opts.protoDir);
  const state = {requests: [], behavior: null, calls: 0};
  const server = new grpc.Server();
  for (const [signal, [, service]] of Object.entries(SERVICES)) {
    server.addService(def[service], {
      Export: (call, callback) => {
        state.calls++;
        const b = state.behavior;
        if (b && b.count !== 0) {
          if (b.count > 0) b.count--;
          const md = new grpc.Metadata();
          if (b.retryDelayMs !== undefined) {
            md.set('grpc-status-details-bin',
              statusWithRetryInfo(b.code, b.message || 'refused by the sink', b.retryDelayMs));
          }
          state.requests.push({signal, refused: b.code, at: Date.now()});
          callback({code: b.code, details: b.message || 'refused by the sink', metadata: md});
          return;
        }
        const md = call.metadata.getMap();
        const headers = {};
        for (const [k, v] of Object.entries(md)) headers[k] = Buffer.isBuffer(v) ? '<bin>' : v;
        state.requests.push({signal, headers, request: normalize(call.request), at: Date.now()});
        callback(null, {});
      },
    });
  }
  const control = http.createServer((req, res) => {
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', () => {
      if (req.method === 'GET' && req.url === '/requests') {
        res.writeHead(200, {'content-type': 'application/json'});
        res.end(JSON.stringify({calls: state.calls, requests: state.requests}));
      } else if (req.method === 'POST' && req.url === '/behavior') {
        state.behavior = JSON.parse(body || 'null');
        res.end('ok');
      } else if (req.method === 'POST' && req.url === '/reset') {
        state.requests = [];
        state.behavior = null;
        state.calls = 0;
        res.end('ok');
      } else {
        res.writeHead(404);
        res.end();
      }
    });
  });
  server.bindAsync('127.0.0.1:' + opts.port, grpc.ServerCredentials.createInsecure(),
    (err, port) => {
      if (err) throw err;
      control.listen(0, '127.0.0.1', () => {
        process.stdout.write('READY ' + port + ' ' + control.address().port + '\n');
      });
    });
  process.stdin.on('end', () => process.exit(0));
  process.stdin.resume();
}

function decode(opts) {
  const def = load(opts.protoDir);
  const input = JSON.parse(fs.readFileSync(0, 'utf8'));
  const out = input.map((item) => {
    const svc = def[SERVICES[item.signal][1]];
    const msg = svc.Export.requestDeserialize(Buffer.from(item.body, 'base64'));
    return normalize(msg);
  });
  process.stdout.write(JSON.stringify(out));
}

const opts = args();
if (opts.mode === 'serve') serve(opts);
else if (opts.mode === 'decode') decode(opts);
else throw new Error('mode must be serve or decode (' + path.basename(process.argv[1]) + ')');
