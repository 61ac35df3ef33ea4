import { getHeapStatistics, getHeapSpaceStatistics, writeHeapSnapshot } from 'node:v8';
import { readFileSync } from 'node:fs';
let k = 0;
function smaps() {
  const t = readFileSync('/proc/self/smaps', 'utf8').split('\n');
  const maps = []; let cur = null;
  for (const l of t) {
    const m = /^([0-9a-f]+)-([0-9a-f]+) (\S+) \S+ \S+ \S+\s*(.*)$/.exec(l);
    if (m) { cur = { start: m[1], size: parseInt(m[2], 16) - parseInt(m[1], 16), perm: m[3], name: m[4] || '[anon]', rss: 0 }; maps.push(cur); continue; }
    const r = /^Rss:\s+(\d+) kB/.exec(l); if (r && cur) cur.rss = +r[1] * 1024;
  }
  return maps;
}
process.on('SIGUSR2', () => {
  globalThis.gc?.(); globalThis.gc?.();
  const m = process.memoryUsage();
  const snap = process.env.MEM_SNAP ? writeHeapSnapshot(`${process.env.MEM_SNAP}/h-${process.pid}-${++k}.heapsnapshot`) : undefined;
  process.stdout.write(JSON.stringify({ mem: { ...m, v8: getHeapStatistics(), spaces: getHeapSpaceStatistics().map((s) => [s.space_name, s.space_used_size, s.physical_space_size]), maps: smaps(), snap } }) + '\n');
});
process.on('SIGTERM', () => process.exit(0));
