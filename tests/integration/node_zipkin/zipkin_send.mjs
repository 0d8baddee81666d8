// Sends spans with the `zipkin` library (openzipkin/zipkin-js) and its HTTP
// transport, as Zipkin v2 JSON, to the URL in argv[2]; prints the ids it used.
import zipkin from 'zipkin';
import transport from 'zipkin-transport-http';

const { Tracer, BatchRecorder, ExplicitContext, Annotation, InetAddress, jsonEncoder } = zipkin;
const { HttpLogger } = transport;

const url = process.argv[2];
const logger = new HttpLogger({ endpoint: url, jsonEncoder: jsonEncoder.JSON_V2, httpInterval: 50 });
const recorder = new BatchRecorder({ logger });
const tracer = new Tracer({ ctxImpl: new ExplicitContext(), recorder, localServiceName: 'zipkin-js-svc', traceId128Bit: true });

const out = [];
function server() {
  const id = tracer.createRootId();
  tracer.setId(id);
  tracer.recordServiceName('zipkin-js-svc');
  tracer.recordRpc('get /cart');
  tracer.recordAnnotation(new Annotation.ServerRecv());
  tracer.recordAnnotation(new Annotation.LocalAddr({ host: new InetAddress('10.1.2.3'), port: 8080 }));
  tracer.recordBinary('http.path', '/cart');
  tracer.recordBinary('cart.items', '3');
  tracer.recordMessage('cache-miss');
  tracer.recordAnnotation(new Annotation.ServerSend());
  out.push({ traceId: id.traceId, spanId: id.spanId, parentId: null, name: 'get /cart', kind: 'SERVER' });
  return id;
}
function client(parent) {
  const id = tracer.letId(parent, () => tracer.createChildId());
  tracer.setId(id);
  tracer.recordServiceName('zipkin-js-svc');
  tracer.recordRpc('post /pay');
  tracer.recordAnnotation(new Annotation.ClientSend());
  tracer.recordAnnotation(new Annotation.ServerAddr({ serviceName: 'payments', host: new InetAddress('10.9.8.7'), port: 443 }));
  tracer.recordBinary('error', 'true');
  tracer.recordAnnotation(new Annotation.ClientRecv());
  out.push({ traceId: id.traceId, spanId: id.spanId, parentId: id.parentSpanId.getOrElse(null), name: 'post /pay', kind: 'CLIENT' });
}
const rootId = server();
client(rootId);
await new Promise((r) => setTimeout(r, 600));
process.stdout.write(JSON.stringify({ spans: out }) + '\n');
process.exit(0);
