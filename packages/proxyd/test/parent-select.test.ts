// Parent selection and --parent parsing, as pure functions (the same code the serving threads run).
import t from 'tap';
import { orderParents, smoothSchedule } from '../src/upstream/parent-select.ts';
import { ParentTable } from '../src/upstream/parent-table.ts';
import { parseParent, showParent, type ParentSpec } from '../src/upstream/parent-spec.ts';

function spec(text: string): ParentSpec {
  const p = parseParent(text);
  if (!p.ok) throw new Error(p.problem);
  return p.value;
}

t.test('--parent entries', async (t) => {
  const p = spec('http://u%40x:s3cret@10.0.0.5:3128,weight=3,name=east');
  t.match(p, { name: 'east', protocol: 'http:', host: '10.0.0.5', port: 3128, weight: 3 });
  t.equal(p.authorization, `Basic ${Buffer.from('u@x:s3cret').toString('base64')}`);
  t.notMatch(showParent(p), /s3cret/, 'shown without the password');
  t.match(spec('https://[::1]:8443'), { name: '[::1]:8443', host: '::1', protocol: 'https:', weight: 1, authorization: undefined });
  t.equal(spec('http://proxy.example').port, 80);
  for (const bad of ['ftp://x:21', 'http://x:3128/path', 'http://x:3128,weight=0', 'http://x:3128,weight=abc', 'http://x,color=red', 'not a url']) {
    const r = parseParent(bad);
    t.notOk(r.ok, `refused: ${bad}`);
  }
  const r = parseParent('http://u:topsecret@x:3128/p');
  t.ok(!r.ok && !JSON.stringify(r).includes('topsecret'), 'the problem does not repeat the password');
});

t.test('smooth weighted round-robin: 3:1 interleaved, exact over a cycle', async (t) => {
  t.same(smoothSchedule([3, 1]), [0, 0, 1, 0]);
  const s = smoothSchedule([5, 1, 1]);
  t.same([0, 1, 2].map((i) => s.filter((x) => x === i).length), [5, 1, 1]);
  t.not(s.slice(0, 3).join(), '0,0,0', 'spread out, not in runs');
});

t.test('round-robin order: the pick, then the others as failover', async (t) => {
  const parents = [spec('http://a:1,weight=3,name=a'), spec('http://b:1,name=b')];
  const table = ParentTable.create(2);
  const schedule = smoothSchedule([3, 1]);
  const firsts = Array.from({ length: 400 }, () => orderParents({ way: 'round-robin', parents, candidates: [0, 1], table, schedule, host: 'x' }));
  t.equal(firsts.filter((o) => o[0] === 0).length, 300, '3:1 exactly over whole cycles');
  t.ok(firsts.every((o) => o.length === 2 && o[0] !== o[1]), 'every order holds both parents');
});

t.test('least-conn: fewest active per weight first', async (t) => {
  const parents = [spec('http://a:1,name=a'), spec('http://b:1,weight=2,name=b')];
  const table = ParentTable.create(2);
  const schedule = smoothSchedule([1, 2]);
  for (let i = 0; i < 3; i++) table.begin(1); // b: 3 active / weight 2 = 1.5
  table.begin(0); // a: 1
  t.equal(orderParents({ way: 'least-conn', parents, candidates: [0, 1], table, schedule, host: 'x' })[0], 0);
  table.begin(0); // a: 2 > 1.5
  t.equal(orderParents({ way: 'least-conn', parents, candidates: [0, 1], table, schedule, host: 'x' })[0], 1);
});

t.test('host-hash: stable, weighted, and removing a parent moves only its hosts', async (t) => {
  const parents = ['p0', 'p1', 'p2', 'p3'].map((n) => spec(`http://${n}:1,name=${n}`));
  const table = ParentTable.create(4);
  const hosts = Array.from({ length: 4000 }, (_, i) => `host${i}.example`);
  const pick = (candidates: number[], host: string, list = parents): number => orderParents({ way: 'host-hash', parents: list, candidates, table, schedule: [], host })[0]!;
  const before = hosts.map((h) => pick([0, 1, 2, 3], h));
  t.same(hosts.map((h) => pick([0, 1, 2, 3], h.toUpperCase())), before, 'the same host (any case) gets the same parent');
  const counts = [0, 1, 2, 3].map((i) => before.filter((x) => x === i).length);
  t.ok(counts.every((c) => c > 800 && c < 1200), `spread evenly: ${counts.join(', ')}`);
  const after = hosts.map((h) => pick([0, 1, 3], h));
  const moved = hosts.filter((_, i) => after[i] !== before[i]).length;
  t.equal(moved, counts[2], 'exactly the removed parent\'s hosts moved');
  t.ok(hosts.every((_, i) => before[i] === 2 || after[i] === before[i]), 'nobody else moved');
  const heavy = parents.map((p, i) => (i === 0 ? { ...p, weight: 3 } : p));
  const share = hosts.filter((h) => pick([0, 1, 2, 3], h, heavy) === 0).length / hosts.length;
  t.ok(share > 0.45 && share < 0.55, `weight 3 of 6 takes about half: ${share}`);
});
