// reload_load.mjs - steady load through the real OpenTelemetry JS SDK OTLP trace
// exporter (exporter-trace-otlp-proto over HTTP, or exporter-trace-otlp-grpc) for
// test_reload.py: every export() carries --batch spans with unique names
// PREFIX-<n>, one after the other, until --seconds have passed. Prints one JSON
// object: {"acked": [names of spans whose export() succeeded], "failed": [names of
// spans whose export() failed, with the SDK's own retries], "errors": [messages]}
// into the --out file (a pipe could be cut short by process.exit()).
//
//   node reload_load.mjs --endpoint URL --protocol http|grpc --prefix NAME --out FILE
//                        [--seconds S] [--batch N]

import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

import { resourceFromAttributes } from '@opentelemetry/resources';
import { BasicTracerProvider } from '@opentelemetry/sdk-trace-base';
import { OTLPTraceExporter as TraceProto } from '@opentelemetry/exporter-trace-otlp-proto';
import { OTLPTraceExporter as TraceGrpc } from '@opentelemetry/exporter-trace-otlp-grpc';

const { values: opts } = parseArgs({
  options: {
    endpoint: { type: 'string' },
    protocol: { type: 'string' },
    prefix: { type: 'string' },
    seconds: { type: 'string', default: '10' },
    batch: { type: 'string', default: '20' },
    out: { type: 'string' },
  },
});
if (!opts.endpoint || !['http', 'grpc'].includes(opts.protocol) || !opts.prefix || !opts.out) {
  console.error('usage: reload_load.mjs --endpoint URL --protocol http|grpc --prefix NAME --out FILE [--seconds S] [--batch N]');
  process.exit(2);
}
const seconds = Number(opts.seconds);
const watchdog = setTimeout(() => {
  console.error('reload_load.mjs: still running long after --seconds');
  process.exit(3);
}, (seconds + 60) * 1000);

let ended = [];
const provider = new BasicTracerProvider({
  resource: resourceFromAttributes({ 'service.name': `reload-${opts.prefix}` }),
  spanProcessors: [{
    onStart() {},
    onEnd(span) { ended.push(span); },
    forceFlush() { return Promise.resolve(); },
    shutdown() { return Promise.resolve(); },
  }],
});
const tracer = provider.getTracer('reload-test');
const exporter = opts.protocol === 'http'
  ? new TraceProto({ url: `${opts.endpoint}/v1/traces`, timeoutMillis: 10000 })
  : new TraceGrpc({ url: opts.endpoint, timeoutMillis: 10000 });

const exportOnce = (spans) => new Promise((resolve) => exporter.export(spans, resolve));

const acked = [], failed = [], errors = [];
const deadline = Date.now() + seconds * 1000;
let n = 0;
while (Date.now() < deadline) {
  for (let i = 0; i < Number(opts.batch); i++) tracer.startSpan(`${opts.prefix}-${++n}`).end();
  const spans = ended;
  ended = [];
  const result = await exportOnce(spans);
  const names = spans.map((s) => s.name);
  if (result.code === 0) {
    acked.push(...names);
  } else {
    failed.push(...names);
    errors.push(String(result.error && (result.error.message || result.error)));
  }
  await new Promise((r) => setTimeout(r, 5));
}
writeFileSync(opts.out, JSON.stringify({ acked, failed, errors: errors.slice(0, 10) }));
clearTimeout(watchdog);
exporter.shutdown().finally(() => process.exit(0));
