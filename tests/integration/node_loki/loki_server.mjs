// A Grafana Loki push-API stand-in for switchyard's loki exporter tests.
//
//   node loki_server.mjs --proto-dir <repo>/proto
//
// Listens on a free 127.0.0.1 port (printed as "LISTENING <port>") and takes
// POST /loki/api/v1/push as Loki does: a snappy-compressed logproto.PushRequest
// (Content-Type application/x-protobuf, decoded with protobufjs from the
// project's proto/loki/push.proto and snappyjs) or JSON (application/json,
// optionally gzip). Both are decoded into one shape by the same code:
//   {labels: {name: value}, labelsText, entries: [{ts: "<unix ns>", line}]}
// so that a push from switchyard and one from a real client (winston-loki)
// compare directly. Every push is kept with its headers and the status answered.
//
//   POST /control  {"statuses": [400, 503], "body": "..."}: the next pushes are
//                  answered with these statuses (then 204 again).
//   GET  /pushes   every push so far, as JSON.
//   POST /quit     stops the server.
import http from 'node:http';
import path from 'node:path';
import zlib from 'node:zlib';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const protobuf = require('protobufjs');
const snappy = require('snappyjs');

const args = process.argv.slice(2);
const protoDir = args[args.indexOf('--proto-dir') + 1];
const root = new protobuf.Root();
root.resolvePath = (_origin, target) => path.join(protoDir, target);
root.loadSync('loki/push.proto', { keepCase: true });
const PushRequest = root.lookupType('logproto.PushRequest');

// Loki's label selector text: {name="value", name2="value2"}, Go escapes.
function parseLabels(text) {
  const out = {};
  let i = 0;
  const fail = (why) => { throw new Error(`labels ${JSON.stringify(text)}: ${why} at ${i}`); };
  const ws = () => { while (i < text.length && text[i] === ' ') i++; };
  ws();
  if (text[i++] !== '{') fail('expected {');
  ws();
  if (text[i] === '}') return out;
  for (;;) {
    ws();
    const m = /^[a-zA-Z_][a-zA-Z0-9_]*/.exec(text.slice(i));
    if (!m) fail('expected a label name');
    const name = m[0];
    i += name.length;
    if (text[i++] !== '=') fail('expected =');
    if (text[i++] !== '"') fail('expected "');
    let v = '';
    for (;;) {
      if (i >= text.length) fail('unterminated value');
      const ch = text[i++];
      if (ch === '"') break;
      if (ch !== '\\') { v += ch; continue; }
      const e = text[i++];
      const simple = { n: '\n', t: '\t', r: '\r', a: '\x07', b: '\b', f: '\f', v: '\v', '"': '"', '\\': '\\' };
      if (e in simple) v += simple[e];
      else if (e === 'x') { v += String.fromCharCode(parseInt(text.slice(i, i + 2), 16)); i += 2; }
      else if (e === 'u') { v += String.fromCharCode(parseInt(text.slice(i, i + 4), 16)); i += 4; }
      else fail('bad escape');
    }
    if (name in out) fail('label given twice: ' + name);
    out[name] = v;
    ws();
    if (text[i] === ',') { i++; continue; }
    if (text[i] === '}') { i++; break; }
    fail('expected , or }');
  }
  ws();
  if (i !== text.length) fail('trailing bytes');
  return out;
}

function decodeProto(raw) {
  const msg = PushRequest.decode(raw);
  const obj = PushRequest.toObject(msg, { longs: String, defaults: true, arrays: true });
  return obj.streams.map((s) => ({
    labels: parseLabels(s.labels),
    labelsText: s.labels,
    entries: s.entries.map((e) => {
      const ts = e.timestamp || { seconds: '0', nanos: 0 };
      return { ts: (BigInt(ts.seconds) * 1000000000n + BigInt(ts.nanos)).toString(), line: e.line };
    }),
  }));
}

function decodeJson(raw) {
  const obj = JSON.parse(raw.toString('utf8'));
  if (!obj || !Array.isArray(obj.streams)) throw new Error('no streams array');
  return obj.streams.map((s) => {
    if (typeof s.stream !== 'object' || !Array.isArray(s.values)) throw new Error('bad stream');
    for (const [k, v] of Object.entries(s.stream)) {
      if (typeof v !== 'string') throw new Error(`label ${k} is not a string`);
    }
    return {
      labels: { ...s.stream },
      labelsText: null,
      entries: s.values.map((v) => {
        if (!Array.isArray(v) || v.length < 2 || typeof v[0] !== 'string' || !/^[0-9]+$/.test(v[0]) ||
            typeof v[1] !== 'string') throw new Error('bad value ' + JSON.stringify(v));
        return { ts: v[0], line: v[1] };
      }),
    };
  });
}

const pushes = [];
let script = [];
let scriptBody = '';

const server = http.createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    const body = Buffer.concat(chunks);
    const answer = (status, text, type = 'text/plain') => {
      res.writeHead(status, { 'Content-Type': type, 'Content-Length': Buffer.byteLength(text) });
      res.end(text);
    };
    if (req.method === 'GET' && req.url === '/pushes') return answer(200, JSON.stringify(pushes), 'application/json');
    if (req.method === 'POST' && req.url === '/control') {
      const c = JSON.parse(body.toString('utf8'));
      script = c.statuses || [];
      scriptBody = c.body || '';
      return answer(200, '{}', 'application/json');
    }
    if (req.method === 'POST' && req.url === '/quit') {
      answer(200, '{}');
      server.close();
      return undefined;
    }
    if (req.method !== 'POST' || req.url !== '/loki/api/v1/push') return answer(404, 'not found');
    const ctype = (req.headers['content-type'] || '').split(';')[0].trim();
    const cenc = req.headers['content-encoding'] || '';
    const rec = {
      n: pushes.length, contentType: ctype, contentEncoding: cenc,
      tenant: req.headers['x-scope-orgid'] === undefined ? null : req.headers['x-scope-orgid'],
      userAgent: req.headers['user-agent'] || '', headers: req.headers,
      encoding: null, streams: null, error: null, status: 204, bytes: body.length,
    };
    try {
      if (ctype === 'application/x-protobuf') {
        if (cenc && cenc !== 'snappy') throw new Error('protobuf bodies must be snappy, got ' + cenc);
        rec.encoding = 'protobuf';
        rec.streams = decodeProto(Buffer.from(snappy.uncompress(body)));
      } else if (ctype === 'application/json') {
        rec.encoding = 'json';
        rec.streams = decodeJson(cenc === 'gzip' ? zlib.gunzipSync(body) : body);
      } else {
        throw new Error('unsupported Content-Type ' + ctype);
      }
    } catch (e) {
      rec.error = String(e && e.message ? e.message : e);
      rec.status = 400;
    }
    if (!rec.error && script.length) rec.status = script.shift();
    pushes.push(rec);
    if (rec.error) return answer(400, 'loghttp: ' + rec.error);
    if (rec.status === 204) { res.writeHead(204); res.end(); return undefined; }
    return answer(rec.status, scriptBody || `status ${rec.status}`);
  });
});

server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`LISTENING ${server.address().port}\n`);
});
// Never outlive the test by much.
setTimeout(() => process.exit(3), 300000).unref();
