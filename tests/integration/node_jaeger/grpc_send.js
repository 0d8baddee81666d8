// A real gRPC client for the jaeger receiver's `grpc` protocol: @grpc/grpc-js
// with @grpc/proto-loader loading proto/jaeger/api_v2/collector.proto (resolved
// from NODE_PATH, the otlp sinks' node_modules). Not our code: grpc-js encodes
// the request and frames it over HTTP/2.
//
//   node grpc_send.js good <port> <proto-dir>   PostSpans with the spans below
//   node grpc_send.js bad <port> <proto-dir>    garbage bytes, an unknown method,
//                                               an unknown service, a short id
//   node grpc_send.js flood <port> <proto-dir>  PostSpans until one is refused
// Prints one JSON line: {"good": {...}}, {"flood": {calls, code, details}} or
// {"bad": [{case, code, details}]}.
'use strict';
const grpc = require('@grpc/grpc-js');
const loader = require('@grpc/proto-loader');
const path = require('path');

const [mode, port, protoDir] = process.argv.slice(2);
const def = loader.loadSync(path.join(protoDir, 'jaeger/api_v2/collector.proto'), {
  includeDirs: [protoDir], longs: String, enums: String, defaults: false,
});
const pkg = grpc.loadPackageDefinition(def).jaeger.api_v2;
const addr = '127.0.0.1:' + port;
const T0 = 1700000000;

const hex = (h) => Buffer.from(h, 'hex');
const TRACE = hex('0102030405060708090a0b0c0d0e0f10');
const tag = (key, vType, field, v) => ({key, vType, [field]: v});
const str = (k, v) => tag(k, 'STRING', 'vStr', v);

function request() {
  const root = {
    traceId: TRACE, spanId: hex('1111111111111111'), operationName: 'root', flags: 1,
    startTime: {seconds: String(T0), nanos: 123456789}, duration: {seconds: '1', nanos: 500},
    tags: [
      str('s', 'v'), tag('b', 'BOOL', 'vBool', true), tag('i', 'INT64', 'vInt64', '-42'),
      tag('f', 'FLOAT64', 'vFloat64', 2.5), tag('bin', 'BINARY', 'vBinary', hex('000102ff')),
      str('span.kind', 'server'), str('otel.scope.name', 'lib-a'),
      str('otel.scope.version', '1.2.3'), str('w3c.tracestate', 'k=v'),
      str('otel.library.name', 'oldlib'),
    ],
    logs: [
      {timestamp: {seconds: String(T0), nanos: 200},
       fields: [str('event', 'ev1'), str('level', 'info'), tag('n', 'INT64', 'vInt64', '3')]},
      {timestamp: {seconds: String(T0 + 1), nanos: 0}, fields: []},
    ],
  };
  const child = {
    traceId: TRACE, spanId: hex('2222222222222222'), operationName: 'child',
    startTime: {seconds: String(T0 + 2), nanos: 0}, duration: {seconds: '0', nanos: 1000},
    references: [
      {traceId: TRACE, spanId: hex('1111111111111111'), refType: 'CHILD_OF'},
      {traceId: hex('0a0b0c0d0e0f0001'), spanId: hex('3333333333333333'),
       refType: 'FOLLOWS_FROM'},
    ],
    tags: [tag('error', 'BOOL', 'vBool', true), str('otel.status_description', 'boom'),
           str('span.kind', 'client')],
  };
  const own = {
    traceId: hex('0000000000000077'), spanId: hex('4444444444444444'),
    operationName: 'own-process', startTime: {seconds: String(T0 + 3), nanos: 5},
    duration: {seconds: '2', nanos: 0},
    // FOLLOWS_FROM of its own trace: the proto path makes it a link, not the parent
    references: [{traceId: hex('0000000000000077'), spanId: hex('5555555555555555'),
                  refType: 'FOLLOWS_FROM'}],
    tags: [str('span.kind', 'producer')],
    process: {serviceName: 'other-svc', tags: [str('region', 'eu')]},
  };
  return {batch: {
    spans: [root, child, own],
    process: {serviceName: 'grpc-svc', tags: [
      str('hostname', 'h1'), tag('proc.int', 'INT64', 'vInt64', '7'),
      str('jaeger.version', 'Go-2.30'),
    ]},
  }};
}

function deadline() {
  return new Date(Date.now() + 10000);
}

function raw(client, method, bytes) {
  return new Promise((resolve) => {
    client.makeUnaryRequest(method, (x) => x, (b) => b, bytes, new grpc.Metadata(), {deadline: deadline()},
                            (err) => resolve(err ? {code: err.code, details: err.details}
                                                 : {code: 0, details: ''}));
  });
}

async function main() {
  const client = new pkg.CollectorService(addr, grpc.credentials.createInsecure());
  if (mode === 'good') {
    const res = await new Promise((resolve) => {
      client.PostSpans(request(), {deadline: deadline()},
                       (err, r) => resolve(err ? {code: err.code, details: err.details}
                                               : {code: 0, response: r}));
    });
    console.log(JSON.stringify({good: res}));
  } else if (mode === 'flood') {
    // PostSpans one after another (up to 5000) until one is not answered OK
    let calls = 0;
    let res;
    do {
      res = await new Promise((resolve) => {
        client.PostSpans(request(), {deadline: deadline()},
                         (err) => resolve(err ? {code: err.code, details: err.details}
                                              : {code: 0}));
      });
      calls++;
    } while (res.code === 0 && calls < 5000);
    console.log(JSON.stringify({flood: {calls, ...res}}));
  } else {
    const out = [];
    const svc = '/jaeger.api_v2.CollectorService/';
    // field 1 (batch) as a length-delimited field whose length runs past the end
    out.push({case: 'garbage', ...(await raw(client, svc + 'PostSpans',
                                             Buffer.from([0x0a, 0x7f, 0x01, 0x02])))});
    out.push({case: 'unknown-method', ...(await raw(client, svc + 'GetSpans', Buffer.alloc(0)))});
    out.push({case: 'unknown-service',
              ...(await raw(client, '/jaeger.api_v2.QueryService/PostSpans', Buffer.alloc(0)))});
    const bad = request();
    bad.batch.spans[0].spanId = hex('010203');
    const res = await new Promise((resolve) => {
      client.PostSpans(bad, {deadline: deadline()},
                       (err) => resolve(err ? {code: err.code, details: err.details} : {code: 0}));
    });
    out.push({case: 'short-span-id', ...res});
    console.log(JSON.stringify({bad: out}));
  }
  client.close();
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
