// Sends spans through the OpenTelemetry JS SDK's Zipkin exporter to the URL in
// argv[2] and prints, as one JSON line, what the exporter was handed (the
// manifest the test compares switchyard's OTLP output with).
import { SpanKind, SpanStatusCode, context, trace } from '@opentelemetry/api';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BasicTracerProvider, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { ZipkinExporter } from '@opentelemetry/exporter-zipkin';

const url = process.argv[2];
const exporter = new ZipkinExporter({ url });
const provider = new BasicTracerProvider({
  resource: resourceFromAttributes({ 'service.name': 'otel-js-zipkin', 'deployment.environment': 'test' }),
  spanProcessors: [new SimpleSpanProcessor(exporter)],
});
const tracer = provider.getTracer('zipkin-test-lib', '1.2.3');

const spans = [];
function record(span) {
  const c = span.spanContext();
  spans.push({
    traceId: c.traceId,
    spanId: c.spanId,
    parentId: span.parentSpanContext?.spanId ?? null,
    name: span.name,
    kind: span.kind,
    attributes: span.attributes,
    events: span.events.map((e) => ({ name: e.name, time: e.time })),
    status: span.status,
    startTime: span.startTime,
    endTime: span.endTime,
  });
}

const root = tracer.startSpan('GET /orders', {
  kind: SpanKind.SERVER,
  attributes: { 'http.method': 'GET', 'http.status_code': 200, 'retry': true, 'ratio': 1.5 },
});
const ctx = trace.setSpan(context.active(), root);
const child = tracer.startSpan('SELECT orders', { kind: SpanKind.CLIENT, attributes: { 'db.system': 'postgresql' } }, ctx);
child.addEvent('query-start');
child.setStatus({ code: SpanStatusCode.ERROR, message: 'connection reset' });
child.end();
record(child);
const internal = tracer.startSpan('compute', { kind: SpanKind.INTERNAL }, ctx);
internal.setStatus({ code: SpanStatusCode.OK });
internal.end();
record(internal);
const producer = tracer.startSpan('publish', { kind: SpanKind.PRODUCER }, ctx);
producer.end();
record(producer);
const consumer = tracer.startSpan('consume', { kind: SpanKind.CONSUMER }, ctx);
consumer.end();
record(consumer);
root.end();
record(root);
await provider.forceFlush();
await provider.shutdown();
process.stdout.write(JSON.stringify({ spans }) + '\n');
