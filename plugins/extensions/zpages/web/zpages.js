// The zpages status page: fetches /api/status every second and draws each
// pipeline as receivers -> processors -> exporters. Nodes are HTML (so their
// text wraps and their error lists grow freely); the edges are an SVG layer
// drawn from the nodes' positions after every refresh. Rates come from two
// successive documents: (counter now - counter before) / (time now - time before),
// with the router's own clock (service.time_unix_ms).
//
// Everything taken from the document is written with textContent or as an
// attribute, never parsed as HTML.
'use strict';

(() => {
  const REFRESH_MS = 1000;
  const SVG = 'http://www.w3.org/2000/svg';
  const MAX_ERRORS_SHOWN = 3;

  let previous = null; // the document before the last one
  let layoutKey = '';  // the structure drawn; rebuilt when it changes
  let renders = 0;

  // ---- formatting ---------------------------------------------------------

  const intFmt = new Intl.NumberFormat('en-US');
  const fmtInt = (n) => intFmt.format(n);

  function fmtRate(r) {
    if (r === null || !isFinite(r)) return '–';
    if (r >= 1e6) return (r / 1e6).toFixed(2) + 'M/s';
    if (r >= 1e4) return (r / 1e3).toFixed(1) + 'k/s';
    return Math.round(r) + '/s';
  }

  function fmtBytes(b) {
    if (b >= 1048576) return (b / 1048576).toFixed(1) + ' MiB';
    if (b >= 1024) return (b / 1024).toFixed(1) + ' KiB';
    return b + ' B';
  }

  function fmtDuration(s) {
    s = Math.max(0, Math.floor(s));
    const h = Math.floor(s / 3600), m = Math.floor(s / 60) % 60, sec = s % 60;
    if (h) return `${h}h${m}m${sec}s`;
    if (m) return `${m}m${sec}s`;
    return `${sec}s`;
  }

  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }

  // ---- reading the document -------------------------------------------------

  const keyOf = (kind, id) => `${kind}:${id}`;

  function componentMap(doc) {
    const m = new Map();
    for (const c of doc.components || []) m.set(keyOf(c.kind, c.id), c);
    return m;
  }

  // The counters a node shows in one pipeline, as [name, value, isBad] rows, and
  // the one whose rate labels the edges leaving it there.
  function nodeCounters(node, comp, signal) {
    if (node.kind === 'processor') {
      return {
        rows: [['incoming', node.incoming, false], ['outgoing', node.outgoing, false],
               ['refused', node.refused, true], ['dropped', node.dropped, true]],
        out: node.outgoing,
      };
    }
    const s = (comp && comp.signals && comp.signals[signal]) || {};
    switch (node.kind + '/' + node.role) {
      case 'receiver/in':
        return { rows: [['accepted', s.accepted, false], ['refused', s.refused, true]],
                 out: s.accepted };
      case 'connector/in':
        return { rows: [['emitted', s.emitted, false]], out: s.emitted };
      case 'exporter/out':
        return { rows: [['sent', s.sent, false], ['send_failed', s.send_failed, true],
                        ['enqueue_failed', s.enqueue_failed, true]], out: undefined };
      default: // connector/out: the pipeline it ends
        return { rows: [['consumed', s.consumed, false], ['failed', s.failed, true],
                        ['enqueue_failed', s.enqueue_failed, true]], out: undefined };
    }
  }

  // One pipeline as columns of nodes: receivers, each processor, exporters.
  function pipelineColumns(p) {
    const cols = [];
    cols.push((p.receivers || []).map((r) => ({ kind: r.kind, id: r.id, role: 'in' })));
    for (const proc of p.processors || []) cols.push([Object.assign({ role: 'proc' }, proc)]);
    cols.push((p.exporters || []).map((x) => ({ kind: x.kind, id: x.id, role: 'out' })));
    return cols;
  }

  function structureKey(doc) {
    return JSON.stringify((doc.pipelines || []).map((p) =>
      [p.id, pipelineColumns(p).map((col) => col.map((n) => keyOf(n.kind, n.id)))]));
  }

  // ---- building the DOM (when the structure changes) -------------------------

  function buildNode(n) {
    const box = el('div', 'node');
    box.dataset.kind = n.kind;
    box.dataset.node = keyOf(n.kind, n.id);
    const title = el('div', 'title');
    const id = el('span', 'id', n.id);
    id.title = n.id;
    title.append(id, el('span', 'kind', n.kind));
    box.append(title);
    if (n.shared > 1) {
      // Its counters are its own, over every pipeline it is in.
      box.append(el('div', 'shared', `in ${n.shared} pipelines: counts are its totals`));
    }
    box.append(el('dl', 'counters'));
    if (n.kind === 'exporter' || n.kind === 'connector') {
      if (n.role === 'out') {
        const q = el('div', 'queue');
        const bar = el('span', 'bar');
        bar.append(el('span', 'fill'));
        q.append(el('span', null, 'queue'), bar, el('span', 'qtext'));
        box.append(q);
      }
    }
    box.append(el('ul', 'errors'));
    return box;
  }

  function buildPipeline(p, comps) {
    const card = el('section', 'pipeline');
    card.dataset.pipeline = p.id;
    const h = el('h2');
    const q = el('span', 'pqueue');
    const bar = el('span', 'bar');
    bar.append(el('span', 'fill'));
    q.append(el('span', null, 'pipeline queue'), bar, el('span', 'qtext'));
    h.append(el('span', 'name', p.id), el('span', 'signal', p.signal), q);
    const graph = el('div', 'graph');
    graph.append(document.createElementNS(SVG, 'svg'));
    for (const col of pipelineColumns(p)) {
      const c = el('div', 'column');
      for (const n of col) {
        const comp = comps.get(keyOf(n.kind, n.id));
        n.shared = comp && comp.pipelines ? comp.pipelines.length : 1;
        c.append(buildNode(n));
      }
      graph.append(c);
    }
    card.append(h, graph);
    return card;
  }

  // ---- updating -----------------------------------------------------------------

  function setQueue(container, q) {
    if (!container) return;
    const fill = container.querySelector('.fill');
    const text = container.querySelector('.qtext');
    if (!q) {
      text.textContent = '–';
      return;
    }
    // Against the number of batches at which the queue refuses more.
    const limit = q.limit || q.capacity;
    const frac = limit > 0 ? Math.min(1, q.size / limit) : 0;
    fill.style.width = (frac * 100).toFixed(1) + '%';
    fill.classList.toggle('high', frac >= 0.5 && frac < 0.9);
    fill.classList.toggle('full', frac >= 0.9);
    text.textContent = `${q.size}/${limit} · ${fmtBytes(q.bytes)}`;
    container.dataset.size = q.size;
    container.dataset.limit = limit;
  }

  function setErrors(ul, errors) {
    ul.replaceChildren();
    const list = (errors || []).slice(-MAX_ERRORS_SHOWN).reverse(); // newest first
    for (const e of list) {
      const li = el('li', e.level);
      const t = el('time', null, (e.time || '').slice(11, 19));
      t.dateTime = e.time || '';
      li.append(t, document.createTextNode(e.message));
      li.title = `${e.time} ${e.level}: ${e.message}`;
      ul.append(li);
    }
  }

  // Rate of a counter between the previous document and this one.
  function rateOf(now, before, dt) {
    if (typeof now !== 'number' || typeof before !== 'number' || !(dt > 0)) return null;
    return Math.max(0, (now - before) / dt);
  }

  function updateNode(box, n, comp, signal, prevNode, prevComp, dt) {
    const cur = nodeCounters(n, comp, signal);
    const old = prevNode ? nodeCounters(prevNode, prevComp, signal) : null;
    const dl = box.querySelector('dl.counters');
    dl.replaceChildren();
    cur.rows.forEach(([name, value], i) => {
      if (value === undefined) return;
      const dd = el('dd');
      dd.dataset.counter = name;
      dd.dataset.value = value;
      dd.append(el('span', 'value', fmtInt(value)));
      if (i === 0 && old) {
        const r = rateOf(value, old.rows[0][1], dt);
        if (r !== null) dd.append(el('span', 'rate', fmtRate(r)));
      }
      if (cur.rows[i][2] && value > 0) dd.classList.add('bad');
      dl.append(el('dt', null, name.replace('_', ' ')), dd);
    });
    const q = box.querySelector('.queue');
    if (q) setQueue(q, comp && comp.queue);
    const src = n.kind === 'processor' ? n : comp;
    setErrors(box.querySelector('ul.errors'), src && src.errors);
    return { out: cur.out, outBefore: old ? old.out : undefined };
  }

  function drawEdges(card, edges) {
    const graph = card.querySelector('.graph');
    const svg = graph.querySelector('svg');
    const gb = graph.getBoundingClientRect();
    svg.setAttribute('width', gb.width);
    svg.setAttribute('height', gb.height);
    svg.replaceChildren();
    for (const e of edges) {
      const a = card.querySelector(`.node[data-node="${CSS.escape(e.from)}"]`);
      const b = card.querySelector(`.node[data-node="${CSS.escape(e.to)}"]`);
      if (!a || !b) continue;
      const ra = a.getBoundingClientRect(), rb = b.getBoundingClientRect();
      const x1 = ra.right - gb.left, y1 = ra.top + ra.height / 2 - gb.top;
      const x2 = rb.left - gb.left, y2 = rb.top + rb.height / 2 - gb.top;
      const mx = (x1 + x2) / 2;
      const path = document.createElementNS(SVG, 'path');
      path.setAttribute('d', `M${x1},${y1} C${mx},${y1} ${mx},${y2} ${x2},${y2}`);
      path.setAttribute('class', e.rate > 0 ? 'edge' : 'edge idle');
      path.dataset.from = e.from;
      path.dataset.to = e.to;
      svg.append(path);
      const g = document.createElementNS(SVG, 'g');
      g.setAttribute('class', 'edge-label');
      g.dataset.from = e.from;
      g.dataset.to = e.to;
      g.dataset.rate = e.rate === null ? '' : e.rate.toFixed(3);
      const text = document.createElementNS(SVG, 'text');
      text.textContent = fmtRate(e.rate);
      const lx = mx, ly = (y1 + y2) / 2;
      text.setAttribute('x', lx);
      text.setAttribute('y', ly + 4);
      text.setAttribute('text-anchor', 'middle');
      const rect = document.createElementNS(SVG, 'rect');
      g.append(rect, text);
      svg.append(g);
      const w = Math.max(36, text.getComputedTextLength() + 10);
      rect.setAttribute('x', lx - w / 2);
      rect.setAttribute('y', ly - 8);
      rect.setAttribute('width', w);
      rect.setAttribute('height', 16);
      rect.setAttribute('rx', 8);
    }
  }

  function updatePipeline(card, p, comps, prevPipe, prevComps, dt) {
    card.querySelector('h2 .signal').textContent = p.signal;
    setQueue(card.querySelector('h2 .pqueue'), p.queue);
    const cols = pipelineColumns(p);
    const prevCols = prevPipe ? pipelineColumns(prevPipe) : null;
    const outRate = [];
    cols.forEach((col, ci) => {
      outRate[ci] = [];
      col.forEach((n, ni) => {
        const key = keyOf(n.kind, n.id);
        const box = card.querySelector(`.node[data-node="${CSS.escape(key)}"]`);
        const prevNode = prevCols && prevCols[ci] && prevCols[ci][ni];
        const r = updateNode(box, n, comps.get(key), p.signal, prevNode,
                             prevComps && prevComps.get(key), dt);
        outRate[ci][ni] = rateOf(r.out, r.outBefore, dt);
      });
    });
    // Edges: every node of a column to every node of the next one (receivers,
    // each processor, exporters), labelled with the items/s the source handed
    // on in this pipeline.
    const edges = [];
    for (let ci = 0; ci + 1 < cols.length; ci++) {
      cols[ci].forEach((a, ai) => {
        for (const b of cols[ci + 1]) {
          edges.push({ from: keyOf(a.kind, a.id), to: keyOf(b.kind, b.id),
                       rate: outRate[ci][ai] });
        }
      });
    }
    drawEdges(card, edges);
  }

  function updateSummary(doc, dt) {
    const svc = doc.service || {}, proc = doc.process || {};
    document.getElementById('version').textContent = svc.version ? 'v' + svc.version : '';
    document.getElementById('status').textContent = svc.status || '?';
    document.getElementById('uptime').textContent = fmtDuration(svc.uptime_seconds || 0);
    document.getElementById('rss').textContent = fmtBytes(proc.rss_bytes || 0);
    const cpu = previous && previous.process ?
      rateOf(proc.cpu_seconds, previous.process.cpu_seconds, dt) : null;
    document.getElementById('cpu').textContent =
      cpu === null ? '–' : (cpu * 100).toFixed(1) + '%';
    document.getElementById('queued').textContent =
      `${fmtBytes(proc.queue_bytes || 0)} of ${fmtBytes(proc.queue_budget_bytes || 0)}`;
    document.getElementById('updated').textContent = (svc.time || '').slice(11, 19) + 'Z';
    const errs = svc.errors || [];
    const sec = document.getElementById('service-errors');
    sec.hidden = errs.length === 0;
    setErrors(sec.querySelector('ul'), errs);
  }

  function render(doc) {
    const key = structureKey(doc);
    const main = document.getElementById('pipelines');
    const comps = componentMap(doc);
    if (key !== layoutKey) {
      main.replaceChildren(...(doc.pipelines || []).map((p) => buildPipeline(p, comps)));
      layoutKey = key;
    }
    const usable = previous && structureKey(previous) === key;
    const dt = usable ? (doc.service.time_unix_ms - previous.service.time_unix_ms) / 1000 : 0;
    const prevComps = usable ? componentMap(previous) : null;
    updateSummary(doc, dt);
    (doc.pipelines || []).forEach((p, i) => {
      const card = main.children[i];
      updatePipeline(card, p, comps, usable ? previous.pipelines[i] : null, prevComps, dt);
    });
    renders++;
    document.body.dataset.renders = renders;
    document.body.dataset.time = doc.service.time_unix_ms;
  }

  async function tick() {
    const banner = document.getElementById('banner');
    try {
      const res = await fetch('/api/status', { cache: 'no-store' });
      if (res.status === 503) throw new Error('the router is reloading its configuration');
      if (!res.ok) throw new Error(`/api/status answered ${res.status}`);
      const doc = await res.json();
      render(doc);
      previous = doc;
      banner.hidden = true;
    } catch (err) {
      banner.textContent = `Cannot read the router's status: ${err.message}`;
      banner.hidden = false;
    } finally {
      setTimeout(tick, REFRESH_MS);
    }
  }

  tick();
})();
