// Real Jaeger senders for tests/integration/test_jaeger.py. Prints one JSON line: a
// manifest of what was sent (ids as hex, times in microseconds), for the test to
// compare with what came out of the router.
//
//   node send.js client-udp  <port>        jaeger-client, UDPSender (binary protocol)
//   node send.js client-http <url>         jaeger-client, HTTPSender (/api/traces)
//   node send.js compact <port> <gen-dir>  thrift-compiler's Node code + the thrift
//                                          runtime, TCompactProtocol, emitBatch over UDP
//   node send.js binary  <port> <gen-dir>  the same with TBinaryProtocol
'use strict';

const dgram = require('dgram');

const [mode, target, genDir] = process.argv.slice(2);
const T0_MS = 1700000000000; // start of the first span, in ms since the epoch

function hex(buf) {
  return Buffer.from(buf).toString('hex');
}

function done(manifest) {
  process.stdout.write(JSON.stringify(manifest) + '\n');
}

// --- jaeger-client --------------------------------------------------------------

function viaClient(reporter, traceId128bit) {
  const { initTracer, opentracing } = require('jaeger-client');
  const errors = [];
  const logger = { info() {}, error(msg) { errors.push(String(msg)); } };
  const tracer = initTracer(
    {
      serviceName: 'jaeger-client-svc',
      sampler: { type: 'const', param: 1 },
      reporter: Object.assign({ flushIntervalMs: 60000 }, reporter),
    },
    { logger, traceId128bit, tags: { 'deploy.env': 'it', 'build.number': 42, 'build.ok': true } });

  const root = tracer.startSpan('root-op', { startTime: T0_MS, tags: { 'span.kind': 'server' } });
  root.setTag('http.method', 'GET');
  root.setTag('retries', 3);
  root.setTag('ratio', 0.25);
  root.setTag('cached', false);
  root.log({ event: 'cache-miss', key: 'k1', size: 7 }, T0_MS + 1);
  root.log({ message: 'no event field' }, T0_MS + 2);

  const child = tracer.startSpan('child-op', {
    childOf: root.context(), startTime: T0_MS + 3,
    tags: { 'span.kind': 'client', error: true, 'otel.status_description': 'boom' },
  });
  const other = tracer.startSpan('follower-op', {
    startTime: T0_MS + 4,
    references: [opentracing.followsFrom(root.context())],
    tags: { 'otel.status_code': 'OK', 'http.status_code': 500 },
  });
  const linked = tracer.startSpan('linked-op', {
    startTime: T0_MS + 5,
    references: [opentracing.childOf(child.context()), opentracing.followsFrom(other.context())],
    tags: { 'span.kind': 'producer', 'http.status_code': 503 },
  });
  child.finish(T0_MS + 10);
  other.finish(T0_MS + 11);
  linked.finish(T0_MS + 12);
  root.finish(T0_MS + 20);

  const spans = [root, child, other, linked].map((s) => {
    const c = s.context();
    return {
      name: s.operationName || s._operationName,
      traceId: hex(c.traceId),
      spanId: hex(c.spanId),
      parentId: c.parentId ? hex(c.parentId) : '',
      startUs: s._startTime * 1000,
      durationUs: s._duration * 1000,
    };
  });
  const processTags = {};
  for (const t of tracer._process.tags) processTags[t.key] = t;
  tracer.close(() => {
    done({ sender: 'jaeger-client', spans, processTags, errors });
  });
}

// --- thrift-compiler's generated code with the Apache Thrift runtime -------------

function viaGenerated(port, compact) {
  const path = require('path');
  const thrift = require('thrift');
  const Int64 = require('node-int64');
  const Agent = require(path.resolve(genDir, 'Agent.js'));
  const jt = require(path.resolve(genDir, 'jaeger_types.js'));

  const i64 = (hexStr) => new Int64(hexStr);
  const us = (n) => new Int64(n);
  const tag = (key, vType, field, value) => new jt.Tag({ key, vType, [field]: value });
  const TT = jt.TagType;
  const base = T0_MS * 1000;

  const batch = new jt.Batch({
    process: new jt.Process({
      serviceName: 'buildkitd',
      tags: [
        tag('hostname', TT.STRING, 'vStr', 'builder-1'),
        tag('jaeger.version', TT.STRING, 'vStr', 'Go-2.30.0'),
        tag('pid', TT.LONG, 'vLong', us(4242)),
      ],
    }),
    spans: [
      new jt.Span({
        traceIdLow: i64('0102030405060708'), traceIdHigh: i64('a1a2a3a4a5a6a7a8'),
        spanId: i64('1111111111111111'), parentSpanId: i64('0000000000000000'),
        operationName: 'solve', flags: 1, startTime: us(base), duration: us(1500),
        tags: [
          tag('span.kind', TT.STRING, 'vStr', 'internal'),
          tag('str', TT.STRING, 'vStr', 'héllo'),
          tag('long', TT.LONG, 'vLong', i64('fffffffffffffffe')), // -2
          tag('big', TT.LONG, 'vLong', i64('7fffffffffffffff')),
          tag('dbl', TT.DOUBLE, 'vDouble', -1.5),
          tag('yes', TT.BOOL, 'vBool', true),
          tag('no', TT.BOOL, 'vBool', false),
          tag('bin', TT.BINARY, 'vBinary', Buffer.from([0, 1, 2, 0xfe, 0xff])),
          tag('otel.library.name', TT.STRING, 'vStr', 'github.com/moby/buildkit'),
          tag('otel.status_code', TT.STRING, 'vStr', 'error'),
          tag('otel.status_description', TT.STRING, 'vStr', 'solve failed'),
          tag('str', TT.STRING, 'vStr', 'second value wins'),
        ],
        logs: [
          new jt.Log({
            timestamp: us(base + 10),
            fields: [
              tag('event', TT.STRING, 'vStr', 'exec started'),
              tag('step', TT.LONG, 'vLong', us(3)),
            ],
          }),
          new jt.Log({ timestamp: us(base + 20), fields: [] }),
        ],
      }),
      new jt.Span({
        traceIdLow: i64('0102030405060708'), traceIdHigh: i64('a1a2a3a4a5a6a7a8'),
        spanId: i64('2222222222222222'), parentSpanId: i64('0000000000000000'),
        operationName: 'exec', flags: 1, startTime: us(base + 100), duration: us(50),
        references: [
          new jt.SpanRef({ refType: jt.SpanRefType.CHILD_OF, traceIdLow: i64('0102030405060708'),
            traceIdHigh: i64('a1a2a3a4a5a6a7a8'), spanId: i64('1111111111111111') }),
          new jt.SpanRef({ refType: jt.SpanRefType.FOLLOWS_FROM, traceIdLow: i64('0000000000000009'),
            traceIdHigh: i64('0000000000000000'), spanId: i64('3333333333333333') }),
        ],
        tags: [
          tag('span.kind', TT.STRING, 'vStr', 'consumer'),
          tag('error', TT.BOOL, 'vBool', false),
          tag('http.status_code', TT.STRING, 'vStr', '404'),
        ],
      }),
    ],
  });

  const Protocol = compact ? thrift.TCompactProtocol : thrift.TBinaryProtocol;
  const transport = new thrift.TBufferedTransport(undefined, (buf) => {
    // The packet as it went out, for the test's truncated and mangled copies.
    if (process.env.JAEGER_DUMP) require('fs').writeFileSync(process.env.JAEGER_DUMP, buf);
    const sock = dgram.createSocket('udp4');
    sock.send(buf, port, '127.0.0.1', (err) => {
      sock.close();
      if (err) throw err;
      done({ sender: compact ? 'thrift-compact' : 'thrift-binary', bytes: buf.length });
    });
  });
  // The generated client writes the oneway call and flushes the transport.
  new Agent.Client(transport, Protocol).emitBatch(batch, () => {});
}

if (mode === 'client-udp') {
  viaClient({ agentHost: '127.0.0.1', agentPort: Number(target) }, true);
} else if (mode === 'client-http') {
  viaClient({ collectorEndpoint: target }, false);
} else if (mode === 'compact' || mode === 'binary') {
  viaGenerated(Number(target), mode === 'compact');
} else {
  process.stderr.write('usage: send.js client-udp|client-http|compact|binary ...\n');
  process.exit(2);
}
