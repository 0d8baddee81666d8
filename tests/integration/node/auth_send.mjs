// auth_send.mjs - exports spans once through the real OpenTelemetry JS SDK OTLP
// trace exporter (exporter-trace-otlp-http, or exporter-trace-otlp-grpc over
// @grpc/grpc-js), with an optional Authorization header / metadata, and prints
// one JSON line: {"code": ExportResultCode, "error": message, "status": HTTP or
// gRPC status code of the failure}. For test_auth.py, which copies this script
// into the node dir of tests/integration/node (its node_modules, installed by
// integration.node_setup) and runs it from there.
//
//   node auth_send.mjs --endpoint URL --protocol http|grpc --prefix NAME
//                      [--count N] [--authorization 'Bearer t']

import { parseArgs } from 'node:util';

import { Metadata } from '@grpc/grpc-js';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BasicTracerProvider } from '@opentelemetry/sdk-trace-base';
import { OTLPTraceExporter as TraceHttp } from '@opentelemetry/exporter-trace-otlp-http';
import { OTLPTraceExporter as TraceGrpc } from '@opentelemetry/exporter-trace-otlp-grpc';

const WATCHDOG_MS = 30000;

const { values: opts } = parseArgs({
  options: {
    endpoint: { type: 'string' },
    protocol: { type: 'string' },
    prefix: { type: 'string' },
    count: { type: 'string', default: '3' },
    authorization: { type: 'string' },
  },
});
if (!opts.endpoint || !['http', 'grpc'].includes(opts.protocol) || !opts.prefix) {
  console.error('usage: auth_send.mjs --endpoint URL --protocol http|grpc --prefix NAME [--count N] [--authorization VALUE]');
  process.exit(2);
}

const watchdog = setTimeout(() => {
  console.error('auth_send.mjs: no export result within the watchdog time');
  process.exit(3);
}, WATCHDOG_MS);

// Spans are collected by a span processor of our own and handed to the exporter
// in one export() call, so that the result printed is the exporter's own.
const ended = [];
const provider = new BasicTracerProvider({
  resource: resourceFromAttributes({ 'service.name': 'auth-test' }),
  spanProcessors: [{
    onStart() {},
    onEnd(span) { ended.push(span); },
    forceFlush() { return Promise.resolve(); },
    shutdown() { return Promise.resolve(); },
  }],
});
const tracer = provider.getTracer('auth-test');
for (let i = 1; i <= Number(opts.count); i++) tracer.startSpan(`${opts.prefix}-${i}`).end();

let exporter;
if (opts.protocol === 'http') {
  const headers = opts.authorization ? { Authorization: opts.authorization } : {};
  exporter = new TraceHttp({ url: `${opts.endpoint}/v1/traces`, headers, timeoutMillis: 10000 });
} else {
  const metadata = new Metadata();
  if (opts.authorization) metadata.set('authorization', opts.authorization);
  exporter = new TraceGrpc({ url: opts.endpoint, metadata, timeoutMillis: 10000 });
}

exporter.export(ended, (result) => {
  const err = result.error;
  const out = {
    code: result.code,
    error: err ? String(err.message || err) : null,
    status: err && err.code !== undefined ? err.code : null,
  };
  console.log(JSON.stringify(out));
  clearTimeout(watchdog);
  exporter.shutdown().finally(() => process.exit(0));
});
