// The analytics page: one GET of /api/analytics?range=… (the logger thread's hourly counts, summed by
// the server), three uPlot charts per hour or per day, and the tables. Numbers are shown whole, as the
// API gives them (thousands separated), so what the page shows can be checked against the API.
'use strict';
const $ = (id) => document.getElementById(id);
const whole = (n) => Math.round(n).toLocaleString('en-US');
const RANGES = ['24h', '7d', '30d'];
const range = RANGES.includes(new URLSearchParams(location.search).get('range')) ? new URLSearchParams(location.search).get('range') : '24h';

/** A compact axis label: 1.2k, 3.4M, 5.6G. */
function short(n) {
  const a = Math.abs(n);
  return a >= 1e9 ? `${(n / 1e9).toFixed(1)}G` : a >= 1e6 ? `${(n / 1e6).toFixed(1)}M` : a >= 1e3 ? `${(n / 1e3).toFixed(1)}k` : String(Math.round(n * 10) / 10);
}

function chart(el, labels, colors) {
  const grid = { stroke: '#222a33' };
  const opts = {
    width: el.clientWidth || 400,
    height: 200,
    legend: { live: false },
    scales: { x: { time: true } },
    axes: [{ stroke: '#8a96a3', grid }, { stroke: '#8a96a3', grid, size: 60, values: (u, splits) => splits.map(short) }],
    series: [{}, ...labels.map((label, i) => ({ label, stroke: colors[i], width: 2, fill: `${colors[i]}22`, points: { show: false } }))],
  };
  const u = new uPlot(opts, [[], ...labels.map(() => [])], el);
  new ResizeObserver(() => u.setSize({ width: el.clientWidth, height: 200 })).observe(el);
  return u;
}

const charts = {
  requests: chart($('chart-requests'), ['requests'], ['#4fb3ff']),
  bytes: chart($('chart-bytes'), ['bytes down', 'bytes up'], ['#6bd68a', '#ffb347']),
  blocked: chart($('chart-blocked'), ['blocked', 'refused', 'limited'], ['#ff6b6b', '#ffb347', '#b38bff']),
};

/** Rows of text cells into a table (textContent only: names come from the traffic). */
function fill(table, header, rows) {
  table.replaceChildren();
  const head = table.insertRow();
  for (const h of header) {
    const th = document.createElement('th');
    th.textContent = h;
    head.appendChild(th);
  }
  for (const row of rows) {
    const tr = table.insertRow();
    for (const value of row) tr.insertCell().textContent = typeof value === 'number' ? whole(value) : value;
  }
}

function render(report) {
  for (const a of $('ranges').querySelectorAll('a')) a.classList.toggle('current', a.dataset.range === report.range);
  for (const s of document.querySelectorAll('.step')) s.textContent = report.step;
  const d = report.decisions;
  $('total-requests').textContent = whole(report.totals.requests);
  $('per-step').textContent = `${report.series.time.length} ${report.step}s`;
  $('total-down').textContent = whole(report.totals.bytesDown);
  $('total-up').textContent = whole(report.totals.bytesUp);
  $('total-blocked').textContent = whole(d.blocked ?? 0);
  $('total-refused').textContent = `${whole(d.refused ?? 0)} / ${whole(d.limited ?? 0)}`;

  const s = report.series;
  const t = s.time.map((ms) => ms / 1000);
  charts.requests.setData([t, s.requests]);
  charts.bytes.setData([t, s.bytesDown, s.bytesUp]);
  charts.blocked.setData([t, s.blocked, s.refused, s.limited]);

  const tally = (k) => [k.name, k.requests, k.bytesDown, k.bytesUp];
  fill($('top-domains'), ['domain', 'requests', 'bytes down', 'bytes up'], report.topDomains.map(tally));
  fill($('top-clients'), ['client', 'requests', 'bytes down', 'bytes up'], report.topClients.map(tally));
  fill($('blocked'), ['domain', 'rule', 'requests'], report.blocked.map((b) => [b.domain, b.rule, b.requests]));
  const counts = (o) => Object.entries(o).sort((a, b) => b[1] - a[1]);
  fill($('decisions'), ['decision', 'requests'], counts(d));
  fill($('status-classes'), ['status', 'requests'], counts(report.status));
  fill($('methods'), ['method', 'requests'], counts(report.methods));
  fill($('cache'), ['result', 'requests'], counts(report.cache));
  $('csv-links').replaceChildren(
    ...['series', 'domains', 'clients', 'blocked'].flatMap((table, i) => {
      const a = document.createElement('a');
      a.href = `/api/analytics.csv?range=${report.range}&table=${table}`;
      a.textContent = table;
      return i === 0 ? [a] : [document.createTextNode(' · '), a];
    }),
  );
  $('store').textContent = `store: ${whole(report.store.hours)} hours, ${whole(report.store.rows)} rows`;
  $('status').textContent = `updated ${new Date().toLocaleTimeString()}`;
}

async function load() {
  try {
    const res = await fetch(`/api/analytics?range=${range}`, { cache: 'no-store' });
    const body = await res.json();
    if (!res.ok) throw new Error(body.error ?? res.statusText);
    window.proxydAnalytics = { report: body, charts }; // what the page drew, for the browser test
    render(body);
  } catch (err) {
    $('status').textContent = `no analytics: ${err.message}`;
  }
}

load();
setInterval(load, 60_000);
