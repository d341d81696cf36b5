// The dashboard: one EventSource on /api/events (a snapshot a second, aggregated on the server), three
// uPlot charts over the last five minutes, and a live picture of the semaphore, the mutexes and the log
// ring. No per-request work in the browser: it draws what the server summed up.
'use strict';
const HISTORY = 300;
const $ = (id) => document.getElementById(id);
const fmtBytes = (n) => (n >= 1e9 ? `${(n / 1e9).toFixed(1)} GB` : n >= 1e6 ? `${(n / 1e6).toFixed(1)} MB` : n >= 1e3 ? `${(n / 1e3).toFixed(1)} kB` : `${Math.round(n)} B`);
const fmtNum = (n) => (n >= 1e6 ? `${(n / 1e6).toFixed(1)}M` : n >= 1e4 ? `${(n / 1e3).toFixed(1)}k` : String(Math.round(n * 10) / 10));

const series = { t: [], active: [], waiting: [], permits: [], allowed: [], blocked: [], up: [], down: [] };
let previous;

function chart(el, labels, colors, height = 180) {
  const opts = {
    width: el.clientWidth || 400,
    height,
    legend: { live: false },
    scales: { x: { time: true } },
    axes: [{ stroke: '#8a96a3', grid: { stroke: '#222a33' } }, { stroke: '#8a96a3', grid: { stroke: '#222a33' } }],
    series: [{}, ...labels.map((label, i) => ({ label, stroke: colors[i], width: 2, fill: `${colors[i]}22` }))],
  };
  const u = new uPlot(opts, [[], ...labels.map(() => [])], el);
  new ResizeObserver(() => u.setSize({ width: el.clientWidth, height })).observe(el);
  return u;
}

const charts = {
  clients: chart($('chart-clients'), ['active', 'waiting', 'permits'], ['#4fb3ff', '#ffb347', '#6b7785']),
  requests: chart($('chart-requests'), ['allowed/s', 'blocked/s'], ['#6bd68a', '#ff6b6b']),
  bytes: chart($('chart-bytes'), ['up B/s', 'down B/s'], ['#c792ea', '#4fb3ff']),
};

function push(key, value) {
  series[key].push(value);
  if (series[key].length > HISTORY) series[key].shift();
}

function rows(table, entries, empty) {
  table.replaceChildren(
    ...(entries.length ? entries : [[empty, '']]).map(([k, v]) => {
      const tr = document.createElement('tr');
      for (const cell of [k, v]) {
        const td = document.createElement('td');
        td.textContent = String(cell);
        tr.append(td);
      }
      return tr;
    }),
  );
}

function render(s) {
  const st = s.stats;
  const sem = s.semaphore;
  const dt = previous ? (s.time - previous.time) / 1000 : 1;
  const rate = (name) => (previous ? Math.max(0, (st[name] - previous.stats[name]) / dt) : 0);

  $('active').textContent = sem.held;
  $('permits').textContent = sem.permits;
  $('waiting').textContent = sem.waiting;
  $('max-waiting').textContent = sem.maxWaiting;
  $('rps').textContent = fmtNum(rate('requests'));
  $('requests-total').textContent = fmtNum(st.requests);
  $('blocked-total').textContent = st.blocked;
  $('bps').textContent = fmtNum(rate('blocked'));
  $('rate').textContent = `${fmtBytes(rate('bytesUp'))}/s / ${fmtBytes(rate('bytesDown'))}/s`;
  $('tunnels').textContent = st.tunnels;
  $('queue-timeouts').textContent = st.queueTimeouts + st.queueFull;

  push('t', s.time / 1000);
  push('active', sem.held);
  push('waiting', sem.waiting);
  push('permits', sem.permits);
  push('allowed', rate('allowed'));
  push('blocked', rate('blocked'));
  push('up', rate('bytesUp'));
  push('down', rate('bytesDown'));
  charts.clients.setData([series.t, series.active, series.waiting, series.permits]);
  charts.requests.setData([series.t, series.allowed, series.blocked]);
  charts.bytes.setData([series.t, series.up, series.down]);

  // Permits: one box each (up to 128 drawn), held filled.
  const shown = Math.min(sem.permits, 128);
  $('permit-boxes').replaceChildren(
    ...Array.from({ length: shown }, (_, i) => {
      const b = document.createElement('span');
      b.className = i < sem.held ? 'box held' : 'box';
      return b;
    }),
  );
  $('permits-held').textContent = sem.held;
  $('permits-free').textContent = sem.free;
  $('admitted').textContent = fmtNum(sem.admitted);
  // The queue: ticket numbers from the head (a cancelled ticket still in line counts until skipped).
  const inLine = (sem.nextTicket - sem.nowServing) | 0;
  $('queue').replaceChildren(
    ...Array.from({ length: Math.min(inLine, 40) }, (_, i) => {
      const t = document.createElement('span');
      t.className = 'ticket';
      t.textContent = `#${(sem.nowServing + i) | 0}`;
      return t;
    }),
  );
  $('now-serving').textContent = sem.nowServing;
  $('next-ticket').textContent = sem.nextTicket;
  $('ring-contention').textContent = s.ring.mutexContention;
  $('sem-contention').textContent = sem.mutexContention;
  $('ring-fill').style.width = `${Math.min(100, (100 * s.ring.usedBytes) / s.ring.capacity)}%`;
  $('ring-used').textContent = fmtBytes(s.ring.usedBytes);
  $('ring-capacity').textContent = fmtBytes(s.ring.capacity);
  $('ring-written').textContent = fmtNum(s.ring.written);
  $('ring-dropped').textContent = s.ring.dropped;

  rows($('top-hosts'), s.topHosts, 'no traffic yet');
  rows($('top-clients'), s.topClients, 'no clients yet');
  rows($('workers'), s.workers.map((w) => [w.threadId === 0 ? 'primary thread' : `worker thread ${w.threadId}`, `${w.connections} conn · ${w.loopDelayP99Ms.toFixed(1)} ms p99 loop delay`]), '–');
  $('recent').textContent = s.recent.slice(-20).join('\n');
  previous = s;
}

function connect() {
  const source = new EventSource('/api/events');
  source.onopen = () => {
    $('conn').textContent = 'live';
    $('conn').className = 'conn live';
  };
  source.onmessage = (e) => render(JSON.parse(e.data));
  source.onerror = () => {
    $('conn').textContent = 'reconnecting…';
    $('conn').className = 'conn';
  };
}
// For tests and the curious: the data behind the charts.
window.proxydDashboard = { series };
connect();
