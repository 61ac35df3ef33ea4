// What a server's JavaScript heap holds per connection: two V8 heap snapshots (before the connections, and with N of
// them open) summed by constructor (objects) or by kind (strings, arrays, code, …), their difference divided by N.
// bench/compat.ts --profile takes the snapshots at its idle-connection point (compat-hook.ts writes them).
import { readFileSync } from 'node:fs';

interface Snapshot {
  snapshot: { meta: { node_fields: string[]; node_types: [string[], ...unknown[]] } };
  nodes: number[];
  strings: string[];
}

/** Self size and count per "kind: name" (objects and closures by constructor or function name, the rest by kind). */
export function heapCensus(path: string): Map<string, { count: number; bytes: number }> {
  const s = JSON.parse(readFileSync(path, 'utf8')) as Snapshot;
  const f = s.snapshot.meta.node_fields;
  const types = s.snapshot.meta.node_types[0];
  const width = f.length, iType = f.indexOf('type'), iName = f.indexOf('name'), iSize = f.indexOf('self_size');
  const out = new Map<string, { count: number; bytes: number }>();
  for (let i = 0; i < s.nodes.length; i += width) {
    const type = types[s.nodes[i + iType]!]!;
    const name = s.strings[s.nodes[i + iName]!]!;
    const key = type === 'object' || type === 'closure' ? `${type}: ${name}` : type === 'native' || type === 'synthetic' ? `${type}: ${name.slice(0, 60)}` : type;
    const e = out.get(key) ?? { count: 0, bytes: 0 };
    e.count++;
    e.bytes += s.nodes[i + iSize]!;
    out.set(key, e);
  }
  return out;
}

export interface PerConnection { key: string; count: number; bytes: number }

/** (at − before) / n per key, largest first: what each of the n connections added to the heap. */
export function perConnection(before: Map<string, { count: number; bytes: number }>, at: Map<string, { count: number; bytes: number }>, n: number): PerConnection[] {
  const out: PerConnection[] = [];
  for (const [key, a] of at) {
    const b = before.get(key) ?? { count: 0, bytes: 0 };
    out.push({ key, count: (a.count - b.count) / n, bytes: (a.bytes - b.bytes) / n });
  }
  return out.sort((x, y) => y.bytes - x.bytes);
}
