// capture_h2.js - makes fuzz_grpc_server's seeds from real HTTP/2 clients: each
// client connects through a relay that records what it sends (to a node:http2
// server answering as a gRPC server does), and each connection's bytes become a
// seed: two option bytes (see fuzz_grpc_server.c) then the client's bytes.
//
//   NODE_PATH=<dir with @grpc/grpc-js> node tests/fuzz/tools/capture_h2.js tests/fuzz/corpus/grpc_server
//
// Clients: @grpc/grpc-js (unary Export calls of the three signals, identity and
// gzip, with metadata, a cancelled call, two calls on one connection) and curl
// --http2-prior-knowledge (a gRPC POST, and an HTTP/2 GET that is not gRPC).
'use strict';
const fs = require('fs');
const http2 = require('http2');
const net = require('net');
const path = require('path');
const { execFileSync } = require('child_process');
const grpc = require('@grpc/grpc-js');

const outDir = process.argv[2];
if (!outDir) throw new Error('usage: capture_h2.js <corpus dir>');

// Protobuf by hand: tag, length-delimited fields.
const ld = (field, buf) => Buffer.concat([Buffer.from([(field << 3) | 2, buf.length]), buf]);
const span = Buffer.concat([ld(1, Buffer.alloc(16, 1)), ld(2, Buffer.alloc(8, 2)), ld(5, Buffer.from('op'))]);
const traces = ld(1, ld(2, ld(2, span)));
const point = Buffer.concat([Buffer.from([0x31]), Buffer.alloc(8, 0)]);
const metrics = ld(1, ld(2, ld(2, Buffer.concat([ld(1, Buffer.from('m')), ld(5, ld(1, point))]))));
const logs = ld(1, ld(2, ld(2, ld(5, ld(1, Buffer.from('hi'))))));
const services = [
  ['trace', 'TraceService', traces],
  ['metrics', 'MetricsService', metrics],
  ['logs', 'LogsService', logs],
];

const h2 = http2.createServer();
h2.on('stream', (stream) => {
  stream.on('data', () => {});
  stream.on('error', () => {});
  stream.on('end', () => {
    if (stream.destroyed) return;
    stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
    stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
    stream.end(Buffer.from([0, 0, 0, 0, 0]));
  });
});

let seq = 0;
const pendingWrites = [];
const relay = net.createServer((client) => {
  const chunks = [];
  const name = `capture_${String(seq++).padStart(2, '0')}`;
  const up = net.connect(h2.address().port, '127.0.0.1');
  client.on('data', (d) => { chunks.push(d); up.write(d); });
  up.on('data', (d) => client.write(d));
  const done = new Promise((resolve) => {
    const finish = () => {
      if (!chunks.length) return resolve();
      fs.writeFileSync(path.join(outDir, name), Buffer.concat([Buffer.from([0, 0]), ...chunks]));
      resolve();
    };
    client.on('close', finish);
  });
  pendingWrites.push(done);
  client.on('error', () => {});
  up.on('error', () => {});
  client.on('close', () => up.destroy());
  up.on('close', () => client.destroy());
});

function unary(target, svc, method, body, options, metadata) {
  const client = new grpc.Client(target, grpc.credentials.createInsecure(), options);
  return new Promise((resolve) => {
    const call = client.makeUnaryRequest(
      `/opentelemetry.proto.collector.${svc[0]}.v1.${svc[1]}/${method}`,
      (b) => b, (b) => b, body, metadata || new grpc.Metadata(), () => { client.close(); resolve(); });
    if (options && options.cancel) setTimeout(() => call.cancel(), 0);
  });
}

async function main() {
  fs.mkdirSync(outDir, { recursive: true });
  await new Promise((r) => h2.listen(0, '127.0.0.1', r));
  await new Promise((r) => relay.listen(0, '127.0.0.1', r));
  const target = `127.0.0.1:${relay.address().port}`;
  for (const svc of services) await unary(target, svc, 'Export', svc[2]);
  const md = new grpc.Metadata();
  md.set('authorization', 'Bearer token');
  md.set('x-tenant', 'a');
  await unary(target, services[0], 'Export', traces,
              { 'grpc.default_compression_algorithm': 2 }, md); // gzip
  await unary(target, services[1], 'Export', metrics, { 'grpc.default_compression_algorithm': 1 }); // deflate
  await unary(target, services[2], 'Nope', logs);
  // Two calls on one connection.
  const client = new grpc.Client(target, grpc.credentials.createInsecure());
  await Promise.all([0, 2].map((i) => new Promise((resolve) => client.makeUnaryRequest(
    `/opentelemetry.proto.collector.${services[i][0]}.v1.${services[i][1]}/Export`,
    (b) => b, (b) => b, services[i][2], new grpc.Metadata(), () => resolve()))));
  client.close();
  // curl's HTTP/2 (nghttp2) client.
  const framed = Buffer.concat([Buffer.from([0, 0, 0, 0, traces.length]), traces]);
  const tmp = path.join(require('os').tmpdir(), `capture_h2_${process.pid}.bin`);
  fs.writeFileSync(tmp, framed);
  const curl = (args) => { try { execFileSync('curl', args, { stdio: 'ignore', timeout: 10000 }); } catch (e) { /* the answer does not matter */ } };
  curl(['-s', '--http2-prior-knowledge', '-H', 'content-type: application/grpc', '-H', 'te: trailers',
        '--data-binary', `@${tmp}`, `http://${target}/opentelemetry.proto.collector.trace.v1.TraceService/Export`]);
  curl(['-s', '--http2-prior-knowledge', `http://${target}/`]);
  fs.unlinkSync(tmp);
  await new Promise((r) => setTimeout(r, 300));
  await Promise.all(pendingWrites);
  relay.close();
  h2.close();
  console.log(`${seq} connections captured into ${outDir}`);
  process.exit(0);
}
main().catch((e) => { console.error(e); process.exit(1); });
