// scrub.mjs - sends spans and logs carrying secrets through the real OpenTelemetry JS
// SDK and its OTLP/HTTP protobuf exporters, and writes a manifest of exactly what
// the exporters were handed, for test_scrub_chain.py to compare with what comes out
// of the scrubbing chain (and of a baseline run straight into the sink).
//
//   node scrub.mjs --endpoint http://127.0.0.1:4318 --prefix NAME --manifest FILE
//
// Every span and log record carries NAME in the resource attribute test.run. The
// secrets (a Luhn-valid card, a URL password, a bearer JWT, e-mail addresses) and
// the values that must survive (a Luhn-invalid number, ordinary attributes) are
// the same on every run; IDs and times are the SDK's. Exits 0 only if every export
// reported SUCCESS; the run is bounded by a watchdog timer.

import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

import { context, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { SeverityNumber } from '@opentelemetry/api-logs';
import { ExportResultCode } from '@opentelemetry/core';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BasicTracerProvider, BatchSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { LoggerProvider, BatchLogRecordProcessor } from '@opentelemetry/sdk-logs';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { OTLPLogExporter } from '@opentelemetry/exporter-logs-otlp-proto';

const WATCHDOG_MS = 60000;
const EXPORT_TIMEOUT_MS = 10000;

const { values: opts } = parseArgs({
  options: {
    endpoint: { type: 'string' },
    prefix: { type: 'string' },
    manifest: { type: 'string' },
  },
});
if (!opts.endpoint || !opts.prefix || !opts.manifest) {
  console.error('usage: scrub.mjs --endpoint URL --prefix NAME --manifest FILE');
  process.exit(2);
}
const watchdog = setTimeout(() => {
  console.error(`scrub.mjs: not done after ${WATCHDOG_MS} ms, giving up`);
  process.exit(3);
}, WATCHDOG_MS);

const P = opts.prefix;
const results = [];
const sent = { spans: [], logs: [] };
const hrToNs = (hr) => (BigInt(hr[0]) * 1000000000n + BigInt(hr[1])).toString();
const plain = (v) => (v === undefined ? null : JSON.parse(JSON.stringify(v)));
const scopeOf = (s) => ({ name: s.name, version: s.version ?? '' });

function watch(signal, exporter, record) {
  const original = exporter.export.bind(exporter);
  exporter.export = (items, done) => {
    original(items, (result) => {
      const ok = result.code === ExportResultCode.SUCCESS;
      if (ok) record(items);
      const err = result.error ? ` (${result.error.message ?? result.error})` : '';
      console.log(`export ${signal}: ${ok ? 'SUCCESS' : 'FAILED'}, ${items.length} items${err}`);
      results.push({ signal, ok });
      done(result);
    });
  };
  return exporter;
}

const recordSpans = (spans) => {
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
      resource: plain(s.resource.attributes),
      scope: scopeOf(s.instrumentationScope),
    });
  }
};

const recordLogs = (logs) => {
  for (const l of logs) {
    sent.logs.push({
      time: hrToNs(l.hrTime),
      observed: hrToNs(l.hrTimeObserved),
      severityText: l.severityText ?? '',
      severityNumber: l.severityNumber ?? 0,
      body: plain(l.body),
      attributes: plain(l.attributes),
      traceId: l.spanContext?.traceId ?? '',
      spanId: l.spanContext?.spanId ?? '',
      flags: l.spanContext?.traceFlags ?? 0,
      resource: plain(l.resource.attributes),
      scope: scopeOf(l.instrumentationScope),
    });
  }
};

// ---------------------------------------------------------------------------
// The secrets (test_scrub_chain.py has the same literals)
// ---------------------------------------------------------------------------

const CARD = '4111 1111 1111 1111'; // Luhn-valid (Visa test number)
const CARD_PLAIN = '4111111111111111';
const NOT_CARD = '4111 1111 1111 1112'; // Luhn-invalid: must stay
const MC = '5500 0000 0000 0004'; // Luhn-valid (MasterCard test number)
const URL_PW = 'https://bob:hunter2@db.example/orders?id=7';
const JWT = 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJib2IifQ.c2lnbmF0dXJlLXNpZw';
const EMAIL = 'alice@example.com';

const resource = resourceFromAttributes({
  'service.name': 'scrub-test',
  'service.version': '2.0.1',
  'test.run': P,
  'host.ip': '10.20.30.40', // not an allowed key: deleted from the resource
});

const url = (signal) => `${opts.endpoint}/v1/${signal}`;
const traceExporter = watch('traces', new OTLPTraceExporter({ url: url('traces'), timeoutMillis: EXPORT_TIMEOUT_MS }), recordSpans);
const tracerProvider = new BasicTracerProvider({
  resource,
  spanProcessors: [new BatchSpanProcessor(traceExporter, { scheduledDelayMillis: 100, exportTimeoutMillis: EXPORT_TIMEOUT_MS })],
});
const tracer = tracerProvider.getTracer('scrub-tracer', '0.4.0');

const logExporter = watch('logs', new OTLPLogExporter({ url: url('logs'), timeoutMillis: EXPORT_TIMEOUT_MS }), recordLogs);
const loggerProvider = new LoggerProvider({
  resource,
  processors: [new BatchLogRecordProcessor({ exporter: logExporter, scheduledDelayMillis: 100, exportTimeoutMillis: EXPORT_TIMEOUT_MS })],
});
const logger = loggerProvider.getLogger('scrub-logger', '0.5.0');

// ---------------------------------------------------------------------------
// Spans
// ---------------------------------------------------------------------------

const root = tracer.startSpan('POST /checkout', {
  kind: SpanKind.SERVER,
  attributes: {
    'http.method': 'POST',
    'http.url': URL_PW,
    'http.status_code': 201,
    'http.request.header.authorization': `Bearer ${JWT}`,
    'payment.card': CARD,
    'order.ref': NOT_CARD,
    'user.email': EMAIL,
    'user.id': 'u-829301',
    'support.contact': 'help@switchyard.example', // allowed_values: kept
    'customer.note': 'ssn 123-45-6789 on file', // blocked_values
    'partner.api_key': 'k-93jf83', // blocked_key_patterns: ****
    'debug.dump': 'internal state 0xdeadbeef', // attributes processor: delete
    'session.secret': 's3cr3t', // not allowed: deleted by redaction
    'retries': 3,
    'ratio': 0.25,
    'cached': false,
    'tags': ['blue', 'green'],
    'long.text': 'L'.repeat(150), // transform: truncate_all(attributes, 128)
  },
});
root.addEvent('payment.failed', { 'exception.message': `card ${CARD_PLAIN} declined for carol@example.org`, 'retries': 1 });
root.addEvent('ok-event', { 'http.method': 'GET' });
root.setStatus({ code: SpanStatusCode.ERROR, message: 'declined' });

const ctx = trace.setSpan(context.active(), root);
const child = tracer.startSpan('SELECT cards', {
  kind: SpanKind.CLIENT,
  attributes: {
    'db.system': 'postgresql',
    'db.statement': `SELECT * FROM cards WHERE number = '${MC}'`,
    'db.rows': 1,
    'order.ref': '4111111111111112', // Luhn-invalid, no blanks: must stay
  },
}, ctx);
child.end();

const health = tracer.startSpan('healthcheck', { kind: SpanKind.SERVER, attributes: { 'http.method': 'GET', 'user.email': EMAIL } });
health.end();
root.end();

const plainSpan = tracer.startSpan('GET /catalog', {
  kind: SpanKind.SERVER,
  attributes: { 'http.method': 'GET', 'http.url': 'https://shop.example/catalog?page=2', 'http.status_code': 200, 'user.id': 'u-1' },
});
plainSpan.end();

// ---------------------------------------------------------------------------
// Logs
// ---------------------------------------------------------------------------

context.with(ctx, () => {
  logger.emit({
    severityNumber: SeverityNumber.INFO,
    severityText: 'INFO',
    body: `payment by ${CARD} for ${EMAIL} via ${URL_PW}`,
    attributes: { 'user.id': 'u-829301', 'order.ref': NOT_CARD, 'http.request.header.authorization': `Bearer ${JWT}`, 'retries': 2, 'debug.dump': 'x' },
  });
});
logger.emit({
  severityNumber: SeverityNumber.WARN,
  severityText: 'WARN',
  body: 'disk at 91% on /var',
  attributes: { 'db.system': 'postgresql', 'ratio': 0.91 },
});
logger.emit({
  severityNumber: SeverityNumber.DEBUG,
  severityText: 'DEBUG',
  body: `debug token Bearer ${JWT} card ${CARD}`,
  attributes: { 'user.email': EMAIL },
});
logger.emit({
  severityNumber: SeverityNumber.ERROR,
  severityText: 'ERROR',
  body: 'order 4111 1111 1111 1112 rejected',
  attributes: { 'order.ref': NOT_CARD },
});

let failed = false;
for (const [what, p] of [
  ['tracer provider', tracerProvider.forceFlush().then(() => tracerProvider.shutdown())],
  ['logger provider', loggerProvider.forceFlush().then(() => loggerProvider.shutdown())],
]) {
  try {
    await p;
  } catch (e) {
    console.error(`scrub.mjs: ${what} flush/shutdown failed: ${e?.message ?? e}`);
    failed = true;
  }
}
for (const signal of ['traces', 'logs']) {
  const mine = results.filter((r) => r.signal === signal);
  if (mine.length === 0) {
    console.error(`scrub.mjs: no ${signal} export happened`);
    failed = true;
  }
  for (const r of mine) if (!r.ok) failed = true;
}
writeFileSync(opts.manifest, JSON.stringify({ prefix: P, ...sent }, null, 1));
clearTimeout(watchdog);
console.log(`scrub.mjs ${P}: ${failed ? 'FAILED' : 'OK'} (${sent.spans.length} spans, ${sent.logs.length} logs)`);
process.exit(failed ? 1 : 0);
