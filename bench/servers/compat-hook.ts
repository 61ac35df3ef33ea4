// Loaded into both sides of the legacy-server benchmark (bench/compat.ts) with `--import`, after megapipe/register:
// the measurement hooks the applications (compat-app.ts) do not have. SIGUSR2: two full garbage collections (the
// process runs with --expose-gc), then one line `{"mem":{rss,heapUsed,external,arrayBuffers,gc}}` on stdout, so the
// harness reads memory after GC; with COMPAT_HEAP_DIR set, a heap snapshot is written there first and its path is
// in the line (`"snapshot"`). SIGTERM: one JSON line `{"exit":true}` and exit 0 (the harness's stop, with the counters
// line bench/lib/run.ts expects).
import { join } from 'node:path';
import { writeHeapSnapshot } from 'node:v8';

const gc = (globalThis as { gc?: () => void }).gc;
let snapshots = 0;

process.on('SIGUSR2', () => {
  gc?.(); gc?.();
  const dir = process.env.COMPAT_HEAP_DIR;
  const snapshot = dir ? writeHeapSnapshot(join(dir, `heap-${process.pid}-${++snapshots}.heapsnapshot`)) : undefined;
  const m = process.memoryUsage();
  process.stdout.write(JSON.stringify({ mem: { rss: m.rss, heapUsed: m.heapUsed, external: m.external, arrayBuffers: m.arrayBuffers, gc: gc !== undefined }, snapshot }) + '\n');
});
process.on('SIGTERM', () => {
  process.stdout.write('{"exit":true}\n', () => process.exit(0));
});
