// Two services traced by the OpenTelemetry JS SDK: "frontend" (a CLIENT span per
// call) and "backend" (the SERVER span of that call, its child in the same
// trace), each with its own NodeTracerProvider, resource and OTLP/HTTP protobuf
// exporter, as two processes would be.
//
//   node send.mjs --url http://127.0.0.1:PORT/v1/traces --ok N --failed M
//                 --client-ms C --server-ms S [--orphan-peer NAME]
//
// Every call's client span lasts C ms and its server span S ms (explicit start and
// end times); the server spans of the last M calls have status ERROR. With
// --orphan-peer, frontend also makes one CLIENT span with peer.service NAME that no
// server answers (the connector's virtual node). Prints one
// JSON line: what was sent, with every trace ID.
import { ROOT_CONTEXT, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BatchSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { NodeTracerProvider } from '@opentelemetry/sdk-trace-node';

function arg(name, dflt) {
  const i = process.argv.indexOf('--' + name);
  return i > 0 ? process.argv[i + 1] : dflt;
}

const url = arg('url');
const ok = Number(arg('ok', '5'));
const failed = Number(arg('failed', '2'));
const clientMs = Number(arg('client-ms', '30'));
const serverMs = Number(arg('server-ms', '7'));
const orphanPeer = arg('orphan-peer', '');
if (!url) {
  console.error('--url is required');
  process.exit(2);
}

function provider(service) {
  const exporter = new OTLPTraceExporter({ url, timeoutMillis: 10000 });
  return new NodeTracerProvider({
    resource: resourceFromAttributes({ 'service.name': service, 'service.namespace': 'shop' }),
    spanProcessors: [new BatchSpanProcessor(exporter, { scheduledDelayMillis: 100 })],
  });
}

const frontend = provider('frontend');
const backend = provider('backend');
const ftracer = frontend.getTracer('frontend-http-client', '1.0.0');
const btracer = backend.getTracer('backend-http-server', '1.0.0');

const traces = [];
const t0 = Date.now() - 60000;
for (let i = 0; i < ok + failed; i++) {
  const start = t0 + i * 100;
  const client = ftracer.startSpan(
    'GET /api/items',
    { kind: SpanKind.CLIENT, startTime: start, attributes: { 'http.request.method': 'GET' } },
    ROOT_CONTEXT,
  );
  const server = btracer.startSpan(
    'GET /api/items',
    { kind: SpanKind.SERVER, startTime: start + 1, attributes: { 'http.route': '/api/items' } },
    trace.setSpan(ROOT_CONTEXT, client),
  );
  const isFailed = i >= ok;
  if (isFailed) server.setStatus({ code: SpanStatusCode.ERROR, message: 'boom' });
  server.end(start + 1 + serverMs);
  client.end(start + clientMs);
  traces.push({
    traceId: client.spanContext().traceId,
    clientSpanId: client.spanContext().spanId,
    serverParent: server.parentSpanContext ? server.parentSpanContext.spanId : null,
    failed: isFailed,
  });
}

if (orphanPeer) {
  const orphan = ftracer.startSpan(
    'charge',
    { kind: SpanKind.CLIENT, startTime: t0, attributes: { 'peer.service': orphanPeer } },
    ROOT_CONTEXT,
  );
  orphan.end(t0 + clientMs);
}

// The backend's spans first, then the frontend's: the connector pairs them in
// either order.
await backend.forceFlush();
await frontend.forceFlush();
await backend.shutdown();
await frontend.shutdown();
console.log(JSON.stringify({ ok, failed, clientMs, serverMs, orphanPeer, traces }));
