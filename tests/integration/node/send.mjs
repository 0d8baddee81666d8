// send.mjs - sends traces, metrics and logs to an OTLP/HTTP or OTLP/gRPC endpoint
// through the real OpenTelemetry JS SDK and its OTLP exporters, and writes a manifest of
// exactly what the exporters were handed, for test_otel_js.py to compare with
// what the debug exporter printed.
//
//   node send.mjs --endpoint http://127.0.0.1:4318 --protocol proto|json|grpc
//                 --prefix NAME [--gzip] --manifest FILE
//
// protocol "proto" uses the exporter-*-otlp-proto packages (application/x-protobuf),
// "json" the exporter-*-otlp-http packages (application/json), "grpc" the
// exporter-*-otlp-grpc packages (@grpc/grpc-js; the endpoint is then the gRPC
// server's http://host:port). Every span, metric
// and log record carries NAME (span names NAME-span-1.., log bodies, the resource
// attribute test.run), so that several runs can share one router.
//
// Prints one line per export call with its result and exits 0 only if every export
// reported ExportResultCode.SUCCESS and every signal was exported at least once.
// The whole run is bounded by a watchdog timer.

import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

import { context, SpanKind, SpanStatusCode, ValueType, trace } from '@opentelemetry/api';
import { SeverityNumber } from '@opentelemetry/api-logs';
import { ExportResultCode } from '@opentelemetry/core';
import { resourceFromAttributes } from '@opentelemetry/resources';
import {
  BasicTracerProvider,
  BatchSpanProcessor,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import { MeterProvider, PeriodicExportingMetricReader } from '@opentelemetry/sdk-metrics';
import { LoggerProvider, SimpleLogRecordProcessor } from '@opentelemetry/sdk-logs';
import { OTLPTraceExporter as TraceProto } from '@opentelemetry/exporter-trace-otlp-proto';
import { OTLPTraceExporter as TraceJson } from '@opentelemetry/exporter-trace-otlp-http';
import { OTLPMetricExporter as MetricProto } from '@opentelemetry/exporter-metrics-otlp-proto';
import { OTLPMetricExporter as MetricJson } from '@opentelemetry/exporter-metrics-otlp-http';
import { OTLPLogExporter as LogProto } from '@opentelemetry/exporter-logs-otlp-proto';
import { OTLPLogExporter as LogJson } from '@opentelemetry/exporter-logs-otlp-http';
import { OTLPTraceExporter as TraceGrpc } from '@opentelemetry/exporter-trace-otlp-grpc';
import { OTLPMetricExporter as MetricGrpc } from '@opentelemetry/exporter-metrics-otlp-grpc';
import { OTLPLogExporter as LogGrpc } from '@opentelemetry/exporter-logs-otlp-grpc';

const WATCHDOG_MS = 60000;
const EXPORT_TIMEOUT_MS = 10000;

const { values: opts } = parseArgs({
  options: {
    endpoint: { type: 'string' },
    protocol: { type: 'string' },
    prefix: { type: 'string' },
    manifest: { type: 'string' },
    gzip: { type: 'boolean', default: false },
  },
});
if (!opts.endpoint || !['proto', 'json', 'grpc'].includes(opts.protocol) || !opts.prefix || !opts.manifest) {
  console.error('usage: send.mjs --endpoint URL --protocol proto|json|grpc --prefix NAME --manifest FILE [--gzip]');
  process.exit(2);
}

const watchdog = setTimeout(() => {
  console.error(`send.mjs: not done after ${WATCHDOG_MS} ms, giving up`);
  process.exit(3);
}, WATCHDOG_MS);

const P = opts.prefix;
const grpc = opts.protocol === 'grpc';
const exporterOptions = (signal) => ({
  url: grpc ? opts.endpoint : `${opts.endpoint}/v1/${signal}`,
  timeoutMillis: EXPORT_TIMEOUT_MS,
  ...(opts.gzip ? { compression: 'gzip' } : {}),
});
const proto = opts.protocol === 'proto';
// The exporter class of each signal for the chosen protocol.
const Exporters = {
  proto: { traces: TraceProto, metrics: MetricProto, logs: LogProto },
  json: { traces: TraceJson, metrics: MetricJson, logs: LogJson },
  grpc: { traces: TraceGrpc, metrics: MetricGrpc, logs: LogGrpc },
}[opts.protocol];
const exporterFor = (signal) => new Exporters[signal](exporterOptions(signal));

// ---------------------------------------------------------------------------
// Recording what is exported
// ---------------------------------------------------------------------------

const results = []; // { signal, code, items, error }
const sent = { spans: [], metrics: [], logs: [] };

const hrToNs = (hr) => (BigInt(hr[0]) * 1000000000n + BigInt(hr[1])).toString();

// Attributes and values as JSON: numbers stay numbers (the OTLP transformer sends
// integral numbers as intValue and others as doubleValue), arrays stay arrays,
// objects (log bodies) stay objects.
const plain = (v) => (v === undefined ? null : JSON.parse(JSON.stringify(v)));
const resourceOf = (r) => plain(r.attributes);
const scopeOf = (s) => ({ name: s.name, version: s.version ?? '' });

// Wraps exporter.export so that every call's result is printed and counted, and
// what it was handed is recorded once the export succeeded (a failed export fails
// the run anyway). record(items, keep) returns the number of items.
function watch(signal, exporter, record) {
  const original = exporter.export.bind(exporter);
  exporter.export = (items, done) => {
    original(items, (result) => {
      const ok = result.code === ExportResultCode.SUCCESS;
      const n = record(items, ok);
      const name = ok ? 'SUCCESS' : 'FAILED';
      const err = result.error ? ` (${result.error.message ?? result.error})` : '';
      console.log(`export ${signal} ${opts.protocol}${opts.gzip ? '+gzip' : ''}: ${name}, ${n} items${err}`);
      results.push({ signal, code: result.code, items: n, error: err });
      done(result);
    });
  };
  return exporter;
}

function recordSpans(spans, keep) {
  if (!keep) return spans.length;
  for (const s of spans) {
    const ctx = s.spanContext();
    sent.spans.push({
      name: s.name,
      kind: s.kind,
      traceId: ctx.traceId,
      spanId: ctx.spanId,
      parentSpanId: s.parentSpanContext?.spanId ?? '',
      start: hrToNs(s.startTime),
      end: hrToNs(s.endTime),
      status: { code: s.status.code, message: s.status.message ?? '' },
      attributes: plain(s.attributes),
      events: s.events.map((e) => ({ name: e.name, time: hrToNs(e.time), attributes: plain(e.attributes ?? {}) })),
      resource: resourceOf(s.resource),
      scope: scopeOf(s.instrumentationScope),
    });
  }
  return spans.length;
}

function recordMetrics(rm, keep) {
  let n = 0;
  for (const sm of rm.scopeMetrics) {
    for (const m of sm.metrics) {
      n += m.dataPoints.length;
      if (!keep) continue;
      sent.metrics.push({
        name: m.descriptor.name,
        description: m.descriptor.description,
        unit: m.descriptor.unit,
        valueType: m.descriptor.valueType === ValueType.INT ? 'int' : 'double',
        dataPointType: m.dataPointType,
        temporality: m.aggregationTemporality,
        isMonotonic: m.isMonotonic ?? null,
        points: m.dataPoints.map((dp) => ({
          start: hrToNs(dp.startTime),
          time: hrToNs(dp.endTime),
          attributes: plain(dp.attributes),
          value: plain(dp.value),
        })),
        resource: resourceOf(rm.resource),
        scope: scopeOf(sm.scope),
      });
    }
  }
  return n;
}

function recordLogs(logs, keep) {
  if (!keep) return logs.length;
  for (const l of logs) {
    sent.logs.push({
      time: hrToNs(l.hrTime),
      observed: hrToNs(l.hrTimeObserved),
      severityText: l.severityText ?? '',
      severityNumber: l.severityNumber ?? 0,
      eventName: l.eventName ?? '',
      body: plain(l.body),
      attributes: plain(l.attributes),
      traceId: l.spanContext?.traceId ?? '',
      spanId: l.spanContext?.spanId ?? '',
      flags: l.spanContext?.traceFlags ?? 0,
      resource: resourceOf(l.resource),
      scope: scopeOf(l.instrumentationScope),
    });
  }
  return logs.length;
}

// ---------------------------------------------------------------------------
// The telemetry
// ---------------------------------------------------------------------------

const resource = resourceFromAttributes({
  'service.name': 'js-test',
  'service.version': '1.2.3',
  'test.run': P,
});

const traceExporter = watch('traces', exporterFor('traces'), recordSpans);
// The batch processor sends several spans in one request, the simple one a request
// per span: use one for each protocol (gRPC: the batch one).
const spanProcessor = proto || grpc
  ? new BatchSpanProcessor(traceExporter, { scheduledDelayMillis: 100, exportTimeoutMillis: EXPORT_TIMEOUT_MS })
  : new SimpleSpanProcessor(traceExporter);
const tracerProvider = new BasicTracerProvider({ resource, spanProcessors: [spanProcessor] });
const tracer = tracerProvider.getTracer('js-test-tracer', '0.1.0');

const metricExporter = watch('metrics', exporterFor('metrics'), recordMetrics);
// A long interval: the only collection is the one shutdown() makes.
const metricReader = new PeriodicExportingMetricReader({
  exporter: metricExporter,
  exportIntervalMillis: 600000,
  exportTimeoutMillis: EXPORT_TIMEOUT_MS,
});
const meterProvider = new MeterProvider({ resource, readers: [metricReader] });
const meter = meterProvider.getMeter('js-test-meter', '0.2.0');

const logExporter = watch('logs', exporterFor('logs'), recordLogs);
const loggerProvider = new LoggerProvider({ resource, processors: [new SimpleLogRecordProcessor({ exporter: logExporter })] });
const logger = loggerProvider.getLogger('js-test-logger', '0.3.0');

// Spans: one of each kind; the first carries attributes of every type and an
// event, the second is its child and has an error status.
const root = tracer.startSpan(`${P}-span-1`, {
  kind: SpanKind.SERVER,
  attributes: {
    'http.method': 'GET',
    'http.route': '/api/items',
    retries: 3,
    'big.int': 1234567890123,
    negative: -17,
    ratio: 0.25,
    'pi.approx': 3.14159,
    cached: true,
    'is.test': false,
    tags: ['alpha', 'beta'],
    codes: [200, 404],
    weights: [0.5, 1.5],
    flags: [true, false],
  },
});
root.addEvent('cache.miss', { 'cache.key': 'item:42', attempt: 2 });
root.setStatus({ code: SpanStatusCode.OK });

const rootCtx = trace.setSpan(context.active(), root);
const child = tracer.startSpan(`${P}-span-2`, { kind: SpanKind.CLIENT, attributes: { 'peer.service': 'inventory-db' } }, rootCtx);
child.addEvent('exception', { 'exception.type': 'TimeoutError', 'exception.message': 'upstream timed out' });
child.setStatus({ code: SpanStatusCode.ERROR, message: 'upstream timed out' });
child.end();

for (const [i, kind] of [
  [3, SpanKind.PRODUCER],
  [4, SpanKind.CONSUMER],
  [5, SpanKind.INTERNAL],
]) {
  const s = tracer.startSpan(`${P}-span-${i}`, { kind, attributes: { 'span.index': i, 'test.run': P } }, rootCtx);
  s.end();
}

// Logs: severities, a string body, a map body, attributes of several types, an
// event name, and one record inside the root span's context.
logger.emit({
  severityNumber: SeverityNumber.INFO,
  severityText: 'INFO',
  body: `${P} log one: user logged in`,
  attributes: { 'user.id': 'u-1001', 'login.attempts': 1, 'login.ok': true },
});
logger.emit({
  severityNumber: SeverityNumber.ERROR,
  severityText: 'ERROR',
  body: `${P} log two: payment failed`,
  attributes: { 'error.code': 502, 'amount': 19.99, 'retry.ids': ['r1', 'r2'] },
  context: rootCtx,
});
logger.emit({
  severityNumber: SeverityNumber.WARN2,
  severityText: 'WARNING',
  eventName: 'js.test.event',
  body: { message: `${P} log three`, count: 3, nested: { ok: false } },
  attributes: { component: 'checkout' },
});

root.end();

// Metrics: an integer counter with two attribute sets, an up-down counter, a
// histogram with explicit bounds and a gauge.
const requests = meter.createCounter('js.requests', {
  description: 'Requests served by the JS test',
  unit: '{request}',
  valueType: ValueType.INT,
});
requests.add(40, { 'http.method': 'GET', 'http.route': '/a' });
requests.add(2, { 'http.method': 'GET', 'http.route': '/a' });
requests.add(1, { 'http.method': 'POST', 'http.route': '/b', ok: true });

const queue = meter.createUpDownCounter('js.queue.depth', { description: 'Queued jobs', valueType: ValueType.INT });
queue.add(10, { queue: 'default' });
queue.add(-3, { queue: 'default' });

const latency = meter.createHistogram('js.latency', {
  description: 'Request latency',
  unit: 'ms',
  advice: { explicitBucketBoundaries: [10, 50, 100] },
});
for (const v of [5, 20, 70, 150.5]) latency.record(v, { 'http.route': '/a' });

const temperature = meter.createGauge('js.temperature', { description: 'Room temperature', unit: 'Cel' });
temperature.record(21.5, { room: 'lab' });

// ---------------------------------------------------------------------------
// Flush everything, then judge
// ---------------------------------------------------------------------------

let failed = false;
for (const [what, p] of [
  ['tracer provider', tracerProvider.forceFlush().then(() => tracerProvider.shutdown())],
  ['logger provider', loggerProvider.forceFlush().then(() => loggerProvider.shutdown())],
  ['meter provider', meterProvider.shutdown()],
]) {
  try {
    await p;
  } catch (e) {
    console.error(`send.mjs: ${what} flush/shutdown failed: ${e?.message ?? e}`);
    failed = true;
  }
}

for (const signal of ['traces', 'metrics', 'logs']) {
  const mine = results.filter((r) => r.signal === signal);
  if (mine.length === 0) {
    console.error(`send.mjs: no ${signal} export happened`);
    failed = true;
  }
  for (const r of mine) if (r.code !== ExportResultCode.SUCCESS) failed = true;
}

const exports = {};
for (const r of results) exports[r.signal] = (exports[r.signal] ?? 0) + 1;
writeFileSync(opts.manifest, JSON.stringify({ prefix: P, protocol: opts.protocol, gzip: opts.gzip, exports, ...sent }, null, 1));

clearTimeout(watchdog);
console.log(`send.mjs ${P}: ${failed ? 'FAILED' : 'OK'} (${results.length} exports)`);
process.exit(failed ? 1 : 0);
