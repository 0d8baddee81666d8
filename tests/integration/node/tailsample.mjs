// tailsample.mjs - traces for the tail_sampling end-to-end test
// (test_tail_sampling_e2e.py), sent through the real OpenTelemetry JS SDK
// (BatchSpanProcessor + the OTLP/HTTP protobuf trace exporter):
//
//   --errors N   traces of 4 spans, one child with status ERROR, 20 ms long
//   --slow N     traces of 3 spans whose root lasts 1500 ms, no error
//   --normal N   traces of 3 spans, 20 ms long, no error
//
// Trace and span IDs come from a seeded generator (--seed), so that a run is
// repeatable and the test can compute which traces the probabilistic policy keeps.
// Writes a manifest {traces: {traceId: {kind, spans: [spanId...]}}} and exits 0 only
// if every export call reported SUCCESS. Bounded by a watchdog timer.
//
//   node tailsample.mjs --endpoint http://127.0.0.1:4318 --seed 7 --errors 40 \
//        --slow 40 --normal 1500 --manifest FILE

import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

import { context, SpanStatusCode, trace } from '@opentelemetry/api';
import { ExportResultCode } from '@opentelemetry/core';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BasicTracerProvider, BatchSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';

const WATCHDOG_MS = 90000;

const { values: opts } = parseArgs({
  options: {
    endpoint: { type: 'string' },
    seed: { type: 'string', default: '1' },
    errors: { type: 'string', default: '0' },
    slow: { type: 'string', default: '0' },
    normal: { type: 'string', default: '0' },
    manifest: { type: 'string' },
  },
});
if (!opts.endpoint || !opts.manifest) {
  console.error('usage: tailsample.mjs --endpoint URL --manifest FILE [--seed S] [--errors N] [--slow N] [--normal N]');
  process.exit(2);
}
const watchdog = setTimeout(() => {
  console.error(`tailsample.mjs: not done after ${WATCHDOG_MS} ms, giving up`);
  process.exit(3);
}, WATCHDOG_MS);

// xorshift64* from the seed: repeatable IDs, spread over every byte.
let state = BigInt.asUintN(64, BigInt(opts.seed) * 0x9e3779b97f4a7c15n + 1n);
function next64() {
  state ^= state >> 12n;
  state ^= BigInt.asUintN(64, state << 25n);
  state ^= state >> 27n;
  return BigInt.asUintN(64, state * 0x2545f4914f6cdd1dn);
}
const hex64 = () => next64().toString(16).padStart(16, '0');
const idGenerator = {
  generateTraceId: () => hex64() + hex64(),
  generateSpanId: () => hex64(),
};

let failed = 0;
let exported = 0;
const exporter = new OTLPTraceExporter({ url: `${opts.endpoint}/v1/traces`, timeoutMillis: 10000 });
const original = exporter.export.bind(exporter);
exporter.export = (spans, done) => {
  original(spans, (result) => {
    const ok = result.code === ExportResultCode.SUCCESS;
    if (ok) exported += spans.length;
    else failed++;
    console.log(`export: ${ok ? 'SUCCESS' : 'FAILED'}, ${spans.length} spans${result.error ? ' ' + result.error.message : ''}`);
    done(result);
  });
};

const provider = new BasicTracerProvider({
  resource: resourceFromAttributes({ 'service.name': 'tailsample-e2e' }),
  idGenerator,
  spanProcessors: [new BatchSpanProcessor(exporter, { maxExportBatchSize: 512, scheduledDelayMillis: 50, maxQueueSize: 100000 })],
});
const tracer = provider.getTracer('tailsample', '1.0.0');

const manifest = { traces: {} };
const t0 = Date.now() - 60000;

// One trace: a root of rootMs and `children` children of 5 ms; errorChild is the
// index of the child with status ERROR (-1: none).
function makeTrace(kind, start, rootMs, children, errorChild) {
  const root = tracer.startSpan(`${kind}-root`, { startTime: new Date(start) });
  const ctx = trace.setSpan(context.active(), root);
  const spans = [root.spanContext().spanId];
  for (let c = 0; c < children; c++) {
    const child = tracer.startSpan(`${kind}-child-${c}`, { startTime: new Date(start + 1 + c) }, ctx);
    child.setAttribute('child.index', c);
    if (c === errorChild) child.setStatus({ code: SpanStatusCode.ERROR, message: 'boom' });
    else child.setStatus({ code: SpanStatusCode.OK });
    child.end(new Date(start + 6 + c));
    spans.push(child.spanContext().spanId);
  }
  root.end(new Date(start + rootMs));
  manifest.traces[root.spanContext().traceId] = { kind, spans };
}

const counts = { error: Number(opts.errors), slow: Number(opts.slow), normal: Number(opts.normal) };
let i = 0;
// Interleaved, so that every export batch mixes the kinds.
for (let n = 0; n < Math.max(counts.error, counts.slow, counts.normal); n++) {
  if (n < counts.error) makeTrace('error', t0 + i++ * 10, 20, 3, 1);
  if (n < counts.slow) makeTrace('slow', t0 + i++ * 10, 1500, 2, -1);
  if (n < counts.normal) makeTrace('normal', t0 + i++ * 10, 20, 2, -1);
}

await provider.forceFlush();
await provider.shutdown();
clearTimeout(watchdog);
writeFileSync(opts.manifest, JSON.stringify(manifest));
const total = Object.values(manifest.traces).reduce((a, t) => a + t.spans.length, 0);
console.log(`sent ${Object.keys(manifest.traces).length} traces, ${total} spans; exported ${exported}, failed exports ${failed}`);
process.exit(failed === 0 && exported === total ? 0 : 1);
