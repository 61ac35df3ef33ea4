// Pools beyond one machine through an existing engine: twemproxy (Debian's `nutcracker`) in front of three
// megapipe-memcached instances, with the repository's deployment file (apps/memcached/deploy/nutcracker.yml, its
// ports rewritten to free ones). 1,000 keys set and read through the proxy; each lives on exactly one instance and
// ketama spreads them over all three; one instance is stopped and twemproxy ejects it (auto_eject_hosts,
// server_failure_limit) and keeps serving the keys of the other two, and the stopped one's keys on the survivors.
// Skipped, with the reason, when nutcracker is not installed (.ci/run installs it).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as net from 'node:net';
import type { ServerHandle } from '../apps/memcached/server.js';
import { RawClient, freePort } from './memcached-testkit.js';
import { startOn } from './memcached-transports.js';

const NUTCRACKER = '/usr/sbin/nutcracker';
const CONFIG = new URL('../../apps/memcached/deploy/nutcracker.yml', import.meta.url);
const N = 1000;
const skip = existsSync(NUTCRACKER) ? false : `${NUTCRACKER} not installed (apt-get install nutcracker): twemproxy pool test skipped`;
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const value = (i: number) => `v${i}-${'x'.repeat(i % 37)}`;

async function waitListening(port: number): Promise<void> {
  for (let i = 0; i < 250; i++) {
    const ok = await new Promise<boolean>((r) => {
      const s = net.connect(port, '127.0.0.1');
      s.once('connect', () => { s.destroy(); r(true); });
      s.once('error', () => r(false));
    });
    if (ok) return;
    await sleep(20);
  }
  throw new Error(`nothing listening on ${port}`);
}

/** Pipelined `get` of each key on one connection: the value per key, or null for a miss, or the error line. */
async function getAll(c: RawClient, keys: string[]): Promise<Map<string, string | null>> {
  c.send(keys.map((k) => `get ${k}\r\n`).join(''));
  const out = new Map<string, string | null>();
  for (const k of keys) {
    const line = (await c.read('\r\n')).toString('latin1');
    if (line === 'END\r\n') { out.set(k, null); continue; }
    const m = /^VALUE (\S+) 0 (\d+)\r\n$/.exec(line);
    if (!m) { out.set(k, line.trim()); continue; }
    assert.equal(m[1], k);
    out.set(k, (await c.read(Number(m[2]) + 2)).toString('latin1').slice(0, -2));
    assert.equal((await c.read('\r\n')).toString('latin1'), 'END\r\n');
  }
  return out;
}

async function setAll(c: RawClient, keys: string[], val: (k: string) => string): Promise<string[]> {
  c.send(keys.map((k) => `set ${k} 0 0 ${val(k).length}\r\n${val(k)}\r\n`).join(''));
  const replies: string[] = [];
  for (let i = 0; i < keys.length; i++) replies.push((await c.read('\r\n')).toString('latin1').trim());
  return replies;
}

describe('twemproxy (nutcracker) in front of three megapipe-memcached instances, ketama', { skip }, () => {
  const servers: ServerHandle[] = [];
  let proxy: ChildProcess | null = null;
  let proxyPort = 0;
  let dir = '';
  const keys = Array.from({ length: N }, (_, i) => `user:${i}`);

  before(async () => {
    for (let i = 0; i < 3; i++) servers.push(await startOn('net', { port: 0, memoryMb: 16 }));
    proxyPort = await freePort();
    const statsPort = await freePort();
    // the repository's file, listening and server ports rewritten
    let conf = readFileSync(CONFIG, 'latin1').replace('127.0.0.1:22121', `127.0.0.1:${proxyPort}`);
    servers.forEach((s, i) => { conf = conf.replace(`127.0.0.1:${11211 + i}:1`, `127.0.0.1:${s.port}:1`); });
    for (const s of servers) assert.ok(conf.includes(`:${s.port}:1`), 'the deployment file names three servers on 11211-11213');
    dir = mkdtempSync(join(tmpdir(), 'mp-nutcracker-'));
    writeFileSync(join(dir, 'nutcracker.yml'), conf);
    proxy = spawn(NUTCRACKER, ['-c', join(dir, 'nutcracker.yml'), '-s', String(statsPort), '-a', '127.0.0.1', '-p', join(dir, 'pid'), '-o', join(dir, 'log')], { stdio: 'ignore' });
    const reap = () => proxy?.kill('SIGKILL');
    process.once('exit', reap);
    await waitListening(proxyPort);
  });
  after(async () => {
    if (proxy && proxy.exitCode === null) { const p = proxy; await new Promise<void>((r) => { p.once('exit', () => r()); p.kill('SIGTERM'); }); }
    await Promise.all(servers.map((s) => s.close().catch(() => {})));
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  let owner = new Map<string, number>();

  it('sets and reads 1,000 keys through the proxy; each lives on exactly one instance, spread over all three', async () => {
    const c = await RawClient.connect(proxyPort);
    try {
      const stored = await setAll(c, keys, (k) => value(Number(k.slice(5))));
      assert.ok(stored.every((r) => r === 'STORED'), stored.find((r) => r !== 'STORED'));
      const got = await getAll(c, keys);
      for (const k of keys) assert.equal(got.get(k), value(Number(k.slice(5))), k);
    } finally { c.close(); }
    const counts = [0, 0, 0];
    owner = new Map();
    for (let i = 0; i < 3; i++) {
      const c1 = await RawClient.connect(servers[i]!.port);
      try {
        const got = await getAll(c1, keys);
        for (const [k, v] of got) {
          if (v === null) continue;
          assert.equal(v, value(Number(k.slice(5))), `${k} on instance ${i}`);
          assert.ok(!owner.has(k), `${k} on instances ${owner.get(k)} and ${i}`);
          owner.set(k, i);
          counts[i]!++;
        }
      } finally { c1.close(); }
    }
    assert.equal(owner.size, N, 'every key on exactly one instance');
    // ketama over three equal weights: each instance holds a fair share (deterministic: the ring hashes the names)
    for (const n of counts) assert.ok(n >= N / 6, `spread ${counts.join('/')}`);
  });

  it('one instance stopped: ejected after a failure, the others\' keys still served, its keys rehashed to the survivors', async () => {
    assert.equal(owner.size, N, 'needs the previous test');
    const dead = 1;
    await servers[dead]!.close();
    const deadKeys = keys.filter((k) => owner.get(k) === dead), liveKeys = keys.filter((k) => owner.get(k) !== dead);
    const c = await RawClient.connect(proxyPort);
    try {
      // requests for the stopped instance's keys fail until twemproxy ejects it (server_failure_limit: 1), then go
      // to the survivors: bounded retries, no timing assumptions
      let ejected = false;
      for (let attempt = 0; attempt < 50 && !ejected; attempt++) {
        const [r] = await setAll(c, [deadKeys[0]!], () => 'after');
        if (r === 'STORED') ejected = true;
        else { assert.match(r!, /^SERVER_ERROR/, r); await sleep(50); }
      }
      assert.ok(ejected, 'twemproxy ejected the stopped instance');
      const got = await getAll(c, liveKeys);
      for (const k of liveKeys) assert.equal(got.get(k), value(Number(k.slice(5))), `${k} (instance ${owner.get(k)}) after the ejection`);
      const stored = await setAll(c, deadKeys, (k) => 'moved:' + k);
      assert.ok(stored.every((r) => r === 'STORED'), stored.find((r) => r !== 'STORED'));
      const moved = await getAll(c, deadKeys);
      for (const k of deadKeys) assert.equal(moved.get(k), 'moved:' + k);
    } finally { c.close(); }
  });
});
