// send_spans.mjs - sends the spans of a spec file to an OTLP/HTTP endpoint through
// the real OpenTelemetry JS SDK (sdk-trace-base + exporter-trace-otlp-proto), one
// tracer provider (one resource) per service, for test_spanmetrics.py.
//
//   node send_spans.mjs --endpoint http://127.0.0.1:4318 --spec FILE
//
// The spec is JSON: {"start_s": N, "spans": [{"service", "name", "kind" (SpanKind
// 0..4), "status" (SpanStatusCode 0..2), "dur_ns", "attrs": {...}}]}. Each span
// starts at start_s + its index in microseconds and ends dur_ns later (HrTime, so
// the duration is exact). Exits 0 only when every export call succeeded; bounded
// by a watchdog.

import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

import { ExportResultCode } from '@opentelemetry/core';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BasicTracerProvider, BatchSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';

const WATCHDOG_MS = 60000;

const { values: opts } = parseArgs({
  options: { endpoint: { type: 'string' }, spec: { type: 'string' } },
});
if (!opts.endpoint || !opts.spec) {
  console.error('usage: send_spans.mjs --endpoint URL --spec FILE');
  process.exit(2);
}
const watchdog = setTimeout(() => {
  console.error(`send_spans.mjs: not done after ${WATCHDOG_MS} ms, giving up`);
  process.exit(3);
}, WATCHDOG_MS);

const spec = JSON.parse(readFileSync(opts.spec, 'utf8'));
let failures = 0;
let exported = 0;

// An exporter that reports every export call's result.
function exporterFor(service) {
  const inner = new OTLPTraceExporter({ url: `${opts.endpoint}/v1/traces`, timeoutMillis: 10000 });
  return {
    export(spans, done) {
      inner.export(spans, (res) => {
        console.log(`${service}: exported ${spans.length} spans: code ${res.code}` +
                    (res.error ? ` (${res.error})` : ''));
        if (res.code === ExportResultCode.SUCCESS) exported += spans.length;
        else failures++;
        done(res);
      });
    },
    shutdown: () => inner.shutdown(),
    forceFlush: () => inner.forceFlush(),
  };
}

const providers = new Map();
function tracerOf(service) {
  if (!providers.has(service)) {
    const provider = new BasicTracerProvider({
      resource: resourceFromAttributes({ 'service.name': service,
                                         'service.instance.id': `${service}-1` }),
      spanProcessors: [new BatchSpanProcessor(exporterFor(service),
                                              { maxExportBatchSize: 64, scheduledDelayMillis: 50 })],
    });
    providers.set(service, provider);
  }
  return providers.get(service).getTracer('spanmetrics-test', '1.0.0');
}

spec.spans.forEach((s, i) => {
  const startNs = BigInt(i) * 1000n;
  const endNs = startNs + BigInt(s.dur_ns);
  const hr = (ns) => [spec.start_s + Number(ns / 1000000000n), Number(ns % 1000000000n)];
  const span = tracerOf(s.service).startSpan(s.name, {
    kind: s.kind,
    startTime: hr(startNs),
    attributes: s.attrs || {},
  });
  if (s.status) span.setStatus({ code: s.status });
  span.end(hr(endNs));
});

for (const p of providers.values()) {
  await p.forceFlush();
  await p.shutdown();
}
clearTimeout(watchdog);
console.log(`exported ${exported} of ${spec.spans.length} spans, ${failures} failed export calls`);
process.exit(failures === 0 && exported === spec.spans.length ? 0 : 1);
