// send_routing.mjs - sends spans of three tenants and log records of four
// severities to an OTLP/HTTP endpoint through the real OpenTelemetry JS SDK and
// its protobuf exporters, and writes a manifest of exactly what was sent, for
// test_connectors_routing.py to check where each item was routed.
//
//   node send_routing.mjs --endpoint http://127.0.0.1:4318 --prefix NAME --manifest FILE
//
// Traces: one TracerProvider per tenant (resource attributes service.name and
// `tenant`: acme, ecorp; the third has no tenant), each exporting its spans in
// one request through a BatchSpanProcessor. Every third span carries the span
// attribute audit=true. Span names are NAME-<tenant>-<i>.
// Logs: one LoggerProvider; records NAME-log-<i> of severities INFO, WARN, ERROR
// and FATAL in turn.
//
// Exits 0 only when every export reported success. Bounded by a watchdog.

import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

import { SeverityNumber } from '@opentelemetry/api-logs';
import { ExportResultCode } from '@opentelemetry/core';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BasicTracerProvider, BatchSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { LoggerProvider, BatchLogRecordProcessor } from '@opentelemetry/sdk-logs';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { OTLPLogExporter } from '@opentelemetry/exporter-logs-otlp-proto';

const WATCHDOG_MS = 60000;
const SPANS_PER_TENANT = 30;
const LOGS = 24;

const { values: opts } = parseArgs({
  options: {
    endpoint: { type: 'string' },
    prefix: { type: 'string' },
    manifest: { type: 'string' },
  },
});
if (!opts.endpoint || !opts.prefix || !opts.manifest) {
  console.error('usage: send_routing.mjs --endpoint URL --prefix NAME --manifest FILE');
  process.exit(2);
}
const watchdog = setTimeout(() => {
  console.error(`send_routing.mjs: not done after ${WATCHDOG_MS} ms, giving up`);
  process.exit(3);
}, WATCHDOG_MS);

let failures = 0;
// Wraps an exporter to report the result of every export call.
function reporting(exporter, what) {
  const orig = exporter.export.bind(exporter);
  exporter.export = (items, done) =>
    orig(items, (result) => {
      const ok = result.code === ExportResultCode.SUCCESS;
      if (!ok) failures++;
      console.log(`${what}: exported ${items.length}: ${ok ? 'ok' : 'FAILED ' + result.error}`);
      done(result);
    });
  return exporter;
}

const P = opts.prefix;
const manifest = { spans: [], logs: [] };

const tenants = ['acme', 'ecorp', null];
for (const tenant of tenants) {
  const attrs = { 'service.name': `svc-${tenant ?? 'none'}` };
  if (tenant) attrs.tenant = tenant;
  const exporter = reporting(
    new OTLPTraceExporter({ url: `${opts.endpoint}/v1/traces`, timeoutMillis: 10000 }),
    `traces ${tenant ?? 'none'}`,
  );
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes(attrs),
    spanProcessors: [
      new BatchSpanProcessor(exporter, { maxExportBatchSize: 512, scheduledDelayMillis: 60000 }),
    ],
  });
  const tracer = provider.getTracer('routing-test', '1.0.0');
  for (let i = 0; i < SPANS_PER_TENANT; i++) {
    const name = `${P}-${tenant ?? 'none'}-${i}`;
    const audit = i % 3 === 0;
    const span = tracer.startSpan(name, { attributes: audit ? { audit: true, n: i } : { n: i } });
    span.end();
    manifest.spans.push({ name, tenant, audit });
  }
  await provider.forceFlush();
  await provider.shutdown();
}

const logExporter = reporting(
  new OTLPLogExporter({ url: `${opts.endpoint}/v1/logs`, timeoutMillis: 10000 }),
  'logs',
);
const loggerProvider = new LoggerProvider({
  resource: resourceFromAttributes({ 'service.name': 'svc-logs' }),
  processors: [
    new BatchLogRecordProcessor({
      exporter: logExporter,
      maxExportBatchSize: 512,
      scheduledDelayMillis: 60000,
    }),
  ],
});
const logger = loggerProvider.getLogger('routing-test', '1.0.0');
const severities = [
  [SeverityNumber.INFO, 'INFO'],
  [SeverityNumber.WARN, 'WARN'],
  [SeverityNumber.ERROR, 'ERROR'],
  [SeverityNumber.FATAL, 'FATAL'],
];
for (let i = 0; i < LOGS; i++) {
  const [severityNumber, severityText] = severities[i % severities.length];
  const body = `${P}-log-${i}`;
  logger.emit({ severityNumber, severityText, body, attributes: { i } });
  manifest.logs.push({ body, severityNumber });
}
await loggerProvider.forceFlush();
await loggerProvider.shutdown();

writeFileSync(opts.manifest, JSON.stringify(manifest));
clearTimeout(watchdog);
if (failures) {
  console.error(`send_routing.mjs: ${failures} export(s) failed`);
  process.exit(1);
}
console.log(`sent ${manifest.spans.length} spans and ${manifest.logs.length} log records`);
