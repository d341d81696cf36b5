// Parent proxies (issue 19), balancing: weighted round-robin, least-conn and host-hash, with real
// proxyd instances as parents on loopback.
import t from 'tap';
import { keepAlive, parent, get, many, served, child, proxydParent, metricsOf, tunnel } from './helpers/parents.ts';
import net from 'node:net';
import { readLog, type TestProxy } from './helpers/proxy.ts';
import { startOrigin } from './helpers/origin.ts';
import { snapshot } from '../src/admin/snapshot.ts';

t.setTimeout(300_000); // real proxies as parents, on a shared 2-core machine
t.teardown(() => keepAlive.destroy());
const origin = await startOrigin();
t.teardown(() => origin.close());

t.test('weighted round-robin: weights 3:1 split 1,000 requests 3:1 (±10%)', { timeout: 240_000 }, async (t) => {
  const a = await proxydParent(t);
  const b = await proxydParent(t);
  const proxy = await child(t, [parent(`http://127.0.0.1:${a.address.port},weight=3,name=a`), parent(`http://127.0.0.1:${b.address.port},weight=1,name=b`)]);
  let ok = 0;
  await many(1000, 16, async (i) => {
    const r = await get(proxy.address.port, origin.url(`/hello?${i}`));
    if (r.status === 200) ok++;
  });
  t.equal(ok, 1000, 'every request answered 200');
  const [na, nb] = [served(a), served(b)];
  t.equal(na + nb, 1000, 'every request went through a parent');
  t.ok(Math.abs(na / nb - 3) <= 0.3, `split ${na}:${nb} is 3:1 within ±10%`);
  const metrics = await metricsOf(proxy);
  t.match(metrics, /proxyd_parent_requests_total\{parent="a"\} 7\d\d/, 'per-parent requests in /metrics');
  t.match(metrics, /proxyd_parent_up\{parent="b"\} 1/, 'state in /metrics');
  const panel = snapshot(proxy).parents;
  t.match(panel, [{ name: 'a', up: true, weight: 3, requests: na }, { name: 'b', up: true, weight: 1, requests: nb }], "the dashboard's parents panel data (/api/stats)");
  const records = readLog(proxy.logFile).filter((r) => r.event === 'request');
  t.ok(records.length > 0 && records.every((r) => r.parent === 'a' || r.parent === 'b'), 'each request record names its parent');
});

t.test('least-conn: with long tunnels held on parent A, new connections go to B', async (t) => {
  const a = await proxydParent(t);
  const b = await proxydParent(t);
  const echo = await startOrigin();
  t.teardown(() => echo.close());
  const proxy = await child(t, [parent(`http://127.0.0.1:${a.address.port},name=a`), parent(`http://127.0.0.1:${b.address.port},name=b`)], { parentSelect: 'least-conn', parentFor: ['localhost=a'] });
  const held: net.Socket[] = [];
  t.teardown(() => held.forEach((s) => s.destroy()));
  for (let i = 0; i < 3; i++) {
    const { head, socket } = await tunnel(proxy.address.port, `localhost:${echo.port}`); // pinned to a
    t.match(head, /^HTTP\/1.1 200/);
    held.push(socket);
  }
  t.equal(a.shared.stats.get('tunnels'), 3, 'three long tunnels held on a');
  for (let i = 0; i < 3; i++) {
    const { head, socket } = await tunnel(proxy.address.port, `127.0.0.1:${echo.port}`);
    t.match(head, /^HTTP\/1.1 200/);
    held.push(socket);
  }
  t.equal(b.shared.stats.get('tunnels'), 3, 'the three new tunnels all went to b');
  t.equal(a.shared.stats.get('tunnels'), 3, 'a kept its three');
  t.match(await metricsOf(proxy), /proxyd_parent_active_connections\{parent="a"\} 3/, 'active connections per parent in the metrics');
});

t.test('host-hash: the same host always reaches the same parent; removing a parent moves only its hosts', async (t) => {
  const parents = [await proxydParent(t), await proxydParent(t), await proxydParent(t)];
  const specs = parents.map((p, i) => parent(`http://127.0.0.1:${p.address.port},name=p${i}`));
  const hosts = Array.from({ length: 15 }, (_, i) => `127.0.0.${i + 2}`);
  async function mapping(proxy: TestProxy): Promise<Map<string, number>> {
    const out = new Map<string, number>();
    for (const host of hosts) {
      const before = parents.map((p) => p.shared.stats.get('requests'));
      await get(proxy.address.port, `http://${host}:${origin.port}/hello`, false); // the parent answers 502 or 200: either way it was asked
      const i = parents.findIndex((p, k) => p.shared.stats.get('requests') > before[k]!);
      out.set(host, i);
    }
    return out;
  }
  const all = await child(t, specs, { parentSelect: 'host-hash' });
  const first = await mapping(all);
  const second = await mapping(all);
  t.same([...second], [...first], 'every host reached the same parent twice');
  t.ok(new Set(first.values()).size >= 2, `the hosts are spread over the parents (${[...first.values()].join(',')})`);
  const without = await child(t, [specs[0]!, specs[2]!], { parentSelect: 'host-hash' });
  const after = await mapping(without);
  for (const host of hosts) {
    if (first.get(host) !== 1) t.equal(after.get(host), first.get(host), `${host} stays on p${first.get(host)}`);
    else t.not(after.get(host), 1, `${host} moved off the removed p1`);
  }
});

