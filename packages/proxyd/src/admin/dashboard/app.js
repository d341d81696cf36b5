// The dashboard: one EventSource on /api/events (a snapshot a second, aggregated on the server), three
// uPlot charts over the last five minutes, and a live picture of the semaphore, the mutexes and the log
// ring. No per-request work in the browser: it draws what the server summed up. The first message of a
// connection carries the server's last minute of chart points, so the first screen already has a
// history and rates.
'use strict';
const HISTORY = 300;
const MIN_TIME_SPAN_S = 60;
const $ = (id) => document.getElementById(id);
const fmtBytes = (n) => (n >= 1e9 ? `${(n / 1e9).toFixed(1)} GB` : n >= 1e6 ? `${(n / 1e6).toFixed(1)} MB` : n >= 1e3 ? `${(n / 1e3).toFixed(1)} kB` : `${Math.round(n)} B`);
const fmtNum = (n) => (n >= 1e6 ? `${(n / 1e6).toFixed(1)}M` : n >= 1e4 ? `${(n / 1e3).toFixed(1)}k` : String(Math.round(n * 10) / 10));
const RATE_UNITS = ['B/s', 'KB/s', 'MB/s', 'GB/s'];

/** Bytes per second in units of 1000, up to three significant digits: 0 B/s, 1.23 KB/s, 12.5 MB/s. */
function formatRate(bytesPerSecond) {
  let value = Math.abs(bytesPerSecond);
  let unit = 0;
  while (value >= 1000 && unit < RATE_UNITS.length - 1) {
    value /= 1000;
    unit++;
  }
  let text = threeDigits(value);
  if (text === '1000' && unit < RATE_UNITS.length - 1) {
    text = '1'; // 999.9 KB/s rounds to 1 MB/s, not 1000 KB/s
    unit++;
  }
  return `${bytesPerSecond < 0 ? '-' : ''}${text} ${RATE_UNITS[unit]}`;
}

function threeDigits(value) {
  return String(Number(value.toFixed(value >= 100 ? 0 : value >= 10 ? 1 : 2)));
}

/**
 * A y axis as wide as its longest label (uPlot's recipe), at least uPlot's default 50 px (narrower, the
 * time axis's first label, centred on its tick, would be cut instead): labels are never cut at the left.
 */
function axisWidth(u, values, axisIndex, cycle) {
  const axis = u.axes[axisIndex];
  if (cycle > 1) return axis._size; // uPlot re-asks while sizes settle: keep the first answer
  const longest = (values ?? []).reduce((a, v) => (String(v).length > a.length ? String(v) : a), '');
  u.ctx.font = axis.font[0];
  return Math.max(50, Math.ceil(axis.ticks.size + axis.gap + u.ctx.measureText(longest).width / devicePixelRatio) + 4);
}

/** The time axis spans at least a minute up to the last point: uPlot widens one point to 1000 days. */
function timeRange(u) {
  const t = u.data[0];
  if (!t.length) return [null, null];
  const last = t[t.length - 1];
  return [Math.min(t[0], last - MIN_TIME_SPAN_S), last];
}

const series = { t: [], active: [], waiting: [], permits: [], allowed: [], blocked: [], up: [], down: [] };
/** The last snapshot charted, and the rates between it and the one before (null until there are two). */
let previous;
let rates = { requests: null, allowed: null, blocked: null, bytesUp: null, bytesDown: null };
let renders = 0;

function chart(el, { labels, colors, format }, height = 180) {
  const grid = { stroke: '#222a33' };
  const opts = {
    width: el.clientWidth || 400,
    height,
    legend: { live: false },
    scales: { x: { time: true, range: timeRange } },
    axes: [
      { stroke: '#8a96a3', grid },
      { stroke: '#8a96a3', grid, size: axisWidth, ...(format && { values: (u, splits) => splits.map(format) }) },
    ],
    series: [{}, ...labels.map((label, i) => ({ label, stroke: colors[i], width: 2, fill: `${colors[i]}22` }))],
  };
  const u = new uPlot(opts, [[], ...labels.map(() => [])], el);
  new ResizeObserver(() => u.setSize({ width: el.clientWidth, height })).observe(el);
  return u;
}

const charts = {
  clients: chart($('chart-clients'), { labels: ['active', 'waiting', 'permits'], colors: ['#4fb3ff', '#ffb347', '#6b7785'] }),
  requests: chart($('chart-requests'), { labels: ['allowed/s', 'blocked/s'], colors: ['#6bd68a', '#ff6b6b'], format: fmtNum }),
  bytes: chart($('chart-bytes'), { labels: ['up', 'down'], colors: ['#c792ea', '#4fb3ff'], format: formatRate }),
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

/** One point on the charts: a snapshot of the server's 1 s tick (or a point of its history). */
function chartPoint(s) {
  const dt = previous ? (s.time - previous.time) / 1000 : 0;
  const rate = (name) => (dt > 0 ? Math.max(0, (s.stats[name] - previous.stats[name]) / dt) : null);
  rates = { requests: rate('requests'), allowed: rate('allowed'), blocked: rate('blocked'), bytesUp: rate('bytesUp'), bytesDown: rate('bytesDown'), limited: rate('rateLimited'), casRetries: rate('limiterCasRetries') };
  push('t', s.time / 1000);
  push('active', s.semaphore.held);
  push('waiting', s.semaphore.waiting);
  push('permits', s.semaphore.permits);
  push('allowed', rates.allowed);
  push('blocked', rates.blocked);
  push('up', rates.bytesUp);
  push('down', rates.bytesDown);
  previous = s;
}

/** A new connection's first message: the server's last minute replaces what was charted. */
function seed(history) {
  for (const key of Object.keys(series)) series[key].length = 0;
  previous = undefined;
  for (const point of history) chartPoint(point);
}

function onSnapshot(s) {
  // The snapshot sent on connect is taken between two ticks: charted only when there is no history.
  if (s.history) seed(s.history);
  if (!s.history?.length) chartPoint(s);
  charts.clients.setData([series.t, series.active, series.waiting, series.permits]);
  charts.requests.setData([series.t, series.allowed, series.blocked]);
  charts.bytes.setData([series.t, series.up, series.down]);
  render(s);
  renders++;
}

const orDash = (value, format) => (value === null ? '–' : format(value));

function render(s) {
  const st = s.stats;
  const sem = s.semaphore;
  $('active').textContent = sem.held;
  $('permits').textContent = sem.permits;
  $('waiting').textContent = sem.waiting;
  $('max-waiting').textContent = sem.maxWaiting;
  $('rps').textContent = orDash(rates.requests, fmtNum);
  $('requests-total').textContent = fmtNum(st.requests);
  $('blocked-total').textContent = st.blocked;
  $('bps').textContent = orDash(rates.blocked, fmtNum);
  $('rate').textContent = `${orDash(rates.bytesUp, formatRate)} / ${orDash(rates.bytesDown, formatRate)}`;
  $('tunnels').textContent = st.tunnels;
  $('connects-total').textContent = fmtNum(st.methodConnect);
  $('queue-timeouts').textContent = st.queueTimeouts;
  $('queue-full').textContent = st.queueFull;

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

  const c = s.cache;
  const pct = (x) => `${(100 * x).toFixed(1)}%`;
  $('cache-state').textContent = c.on ? `on, cap ${fmtBytes(c.maxBytes)}` : 'off';
  $('cache-in-flight').textContent = c.inFlight;
  $('cache-waiting').textContent = c.waiting;
  $('cache-followers').textContent = fmtNum(c.followers);
  $('cache-takeovers').textContent = c.takeovers;
  $('cache-ratio').textContent = `${pct(c.requestHitRatio)} · ${pct(c.byteHitRatio)}`;
  $('cache-stored').textContent = `${fmtNum(st.cacheEntries)} · ${fmtBytes(st.cacheBytes)}`;
  $('cache-tags').textContent = [st.cacheHits + st.cacheCoalesced, st.cacheMisses, st.cacheRevalidated, st.cacheStale, st.cacheBypass].map(fmtNum).join(' · ');
  $('cache-evictions').textContent = `${fmtNum(st.cacheEvictions)} · ${fmtNum(st.cacheErrors)}`;

  rows($('top-hosts'), s.topHosts, 'no traffic yet');
  rows($('top-clients'), s.topClients, 'no clients yet');
  rows($('workers'), s.workers.map((w) => [w.threadId === 0 ? 'primary thread' : `worker thread ${w.threadId}`, `${w.connections} conn · ${w.loopDelayP99Ms.toFixed(1)} ms p99 loop delay`]), '–');
  // Parent proxies (shown only with --parent): each one's state and load, as every thread sees it.
  $('parents-panel').hidden = !s.parents || s.parents.length === 0;
  if (s.parents) {
    rows($('parents'), s.parents.map((p) => [`${p.name} ${p.up ? '● up' : '○ DOWN'}`, `${p.active} active · ${fmtNum(p.requests)} requests · ${p.failures} failed · weight ${p.weight}`]), '–');
  }
  $('recent').textContent = s.recent.slice(-20).join('\n');
  renderDefence(s);
}

/** Rate limits and bans: the hottest clients with what is left of their burst, bans with reason and time left. */
function renderDefence(s) {
  const st = s.stats;
  const left = (ms) => (ms >= 3_600_000 ? `${(ms / 3_600_000).toFixed(1)} h` : ms >= 60_000 ? `${Math.ceil(ms / 60_000)} min` : `${Math.ceil(ms / 1000)} s`);
  rows($('hot-keys'), s.limits.hottest.map((h) => [h.key, h.tokens === undefined ? `seen ${left(h.idleMs)} ago (no --rate-limit)` : `${h.tokens} of ${h.burst} left`]), 'no clients in the last minute');
  rows($('bans'), s.limits.bans.map((b) => [b.key, `${b.detector} · ${left(b.leftMs)} left${b.offences > 1 ? ` · offence ${b.offences}` : ''}${b.origin === 'fleet' ? ' · from the fleet' : ''}`]), 'no bans in force');
  $('limited-rate').textContent = orDash(rates.limited, fmtNum);
  $('cas-rate').textContent = orDash(rates.casRetries, fmtNum);
  $('refused-at-accept').textContent = `${fmtNum(st.bannedRefused)} · ${fmtNum(st.connRateRefused)} · ${fmtNum(st.connCapRefused)}`;
  $('bans-total').textContent = fmtNum(st.bans);
}

function connect() {
  const source = new EventSource('/api/events');
  source.onopen = () => {
    $('conn').textContent = 'live';
    $('conn').className = 'live';
  };
  source.onmessage = (e) => onSnapshot(JSON.parse(e.data));
  source.onerror = () => {
    $('conn').textContent = 'reconnecting…';
    $('conn').className = '';
  };
}
// For tests and the curious: the data behind the charts, the rate format, how many snapshots were drawn.
window.proxydDashboard = {
  series,
  formatRate,
  get renders() {
    return renders;
  },
};
connect();
