// The prebuilt addons the package ships (npm run prebuilds → prebuilds/linux-x64/megapipe.{glibc,musl}.node): the
// loader picks the glibc one here and serves on io_uring through it; the musl one is musl's (it needs musl's libc.so and
// no glibc symbol version, and musl's own dynamic loader resolves every C-library symbol it uses, leaving only the
// Node-API and libuv ones node provides); asked for musl (LIBC=musl), a glibc node falls back with one warning. No musl
// build of node is at hand on this Debian machine, so the musl addon is not run inside node here (that case says so).
// Without prebuilds/ the suite skips, saying why — unless MEGAPIPE_EXPECT_PREBUILDS=1 (CI), where that fails.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { uringExpectation } from './uring-expected.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const dir = join(root, 'prebuilds', 'linux-x64');
const glibc = join(dir, 'megapipe.glibc.node');
const musl = join(dir, 'megapipe.musl.node');
const MUSL_LOADER = '/lib/ld-musl-x86_64.so.1';

const expected = process.env.MEGAPIPE_EXPECT_PREBUILDS === '1';
const present = existsSync(glibc) && existsSync(musl);
if (expected && !present) throw new Error(`MEGAPIPE_EXPECT_PREBUILDS=1 but ${dir} lacks megapipe.glibc.node or megapipe.musl.node (npm run prebuilds)`);
const skip: string | false = process.platform !== 'linux' || process.arch !== 'x64' ? `prebuilds are for linux-x64; this is ${process.platform}-${process.arch}`
  : !present ? `${dir} is not built (npm run prebuilds)` : false;

function readelf(args: string[]): string {
  const r = spawnSync('readelf', ['-W', ...args], { encoding: 'utf8', timeout: 30_000 });
  assert.equal(r.status, 0, `readelf ${args.join(' ')}: ${r.error?.message ?? r.stderr}`);
  return r.stdout;
}
const needed = (file: string): string[] => [...readelf(['-d', file]).matchAll(/\(NEEDED\)\s+Shared library: \[([^\]]+)\]/g)].map((m) => m[1]!);

/** Runs an ES module script in a fresh node (env added to this one's, MEGAPIPE_* cleared); its JSON report. */
function child(script: string, env: NodeJS.ProcessEnv): { report: Record<string, unknown>; stderr: string } {
  const tmp = mkdtempSync(join(tmpdir(), 'megapipe-prebuilds-'));
  try {
    const file = join(tmp, 'child.mjs');
    writeFileSync(file, script);
    const base: NodeJS.ProcessEnv = { ...process.env };
    for (const k of Object.keys(base)) if (k.startsWith('MEGAPIPE_') || k === 'LIBC' || k === 'PREBUILDS_ONLY') delete base[k];
    const r = spawnSync(process.execPath, [file], { env: { ...base, ...env }, encoding: 'utf8', timeout: 60_000 });
    assert.equal(r.status, 0, `child failed: ${r.stderr}`);
    return { report: JSON.parse(r.stdout.trim().split('\n').pop()!) as Record<string, unknown>, stderr: r.stderr };
  } finally { rmSync(tmp, { recursive: true, force: true }); }
}

const echoScript = `
  const warnings = [];
  process.on('warning', (w) => warnings.push(w.code + ': ' + w.message));
  const net = await import('node:net');
  const native = await import(${JSON.stringify(pathToFileURL(join(root, 'dist/src/native.js')).href)});
  const m = await import(${JSON.stringify(pathToFileURL(join(root, 'dist/src/index.js')).href)});
  const ch = m.createChannel();
  const l = m.listen({ port: 0 });
  const lh = ch.register(l);
  ch.onEvent((ev) => {
    if (ev.type === 'accept') ch.read(ev.handle);
    else if (ev.type === 'read') { if (ev.result > 0) ch.write(ev.handle, ev.buffer, ev.offset, ev.result); else ch.disconnect(ev.handle); }
  });
  ch.accept(lh);
  const sent = (await import('node:crypto')).randomBytes(100000);
  const got = await new Promise((resolve, reject) => {
    const c = net.connect(l.port, '127.0.0.1'), parts = [];
    const timer = setTimeout(() => { c.destroy(); reject(new Error('echo timed out')); }, 30000);
    c.on('data', (d) => { parts.push(d); if (Buffer.concat(parts).length >= sent.length) c.end(); });
    c.on('close', () => { clearTimeout(timer); resolve(Buffer.concat(parts)); });
    c.on('error', reject);
    c.write(sent);
  });
  const report = { file: native.nativeFile, error: native.nativeLoadError, backend: ch.backend, same: got.equals(sent), warnings };
  ch.close(); l.close();
  console.log(JSON.stringify(report));`;

describe('prebuilt addons (prebuilds/linux-x64)', { skip }, () => {
  it('the glibc prebuild: the loader picks it (build/ ignored: PREBUILDS_ONLY=1), and an echo runs through it', () => {
    assert.ok(needed(glibc).includes('libc.so.6'), `glibc's libc: ${needed(glibc).join(', ')}`);
    // README: glibc 2.28 or later (the newest symbol version it asks for)
    const versions = [...readelf(['-V', glibc]).matchAll(/GLIBC_(\d+)\.(\d+)/g)].map((m) => Number(m[1]) * 1000 + Number(m[2]));
    assert.ok(versions.length > 0 && Math.max(...versions) <= 2028, `newest glibc symbol version: ${Math.max(...versions)}`);
    const { report } = child(echoScript, { PREBUILDS_ONLY: '1' });
    assert.equal(report.file, glibc);
    assert.equal(report.error, null);
    assert.equal(report.same, true, '100 KB echoed unchanged');
    // where this kernel runs io_uring, the prebuild must serve on it (not merely load)
    if (uringExpectation().expected) {
      assert.equal(report.backend, 'uring');
      assert.deepEqual(report.warnings, []);
    }
  });

  it("the musl prebuild is musl's: it needs musl's libc.so alone and no glibc symbol version", () => {
    assert.deepEqual(needed(musl), ['libc.so']);
    assert.doesNotMatch(readelf(['-V', musl]), /GLIBC_/);
    assert.match(readelf(['-h', musl]), /Machine:\s+Advanced Micro Devices X86-64/);
  });

  it("musl's dynamic loader resolves every C-library symbol it uses; only node's (napi_*, uv_*) are left to the host", { skip: !existsSync(MUSL_LOADER) && !expected ? `${MUSL_LOADER} is not installed (Debian's musl)` : false }, () => {
    // ld-musl in ldd mode loads the object as a process would and names each symbol it cannot bind
    const r = spawnSync(MUSL_LOADER, ['--list', musl], { encoding: 'utf8', timeout: 30_000 });
    const out = `${r.stdout}${r.stderr}`;
    assert.match(out, /libc\.so => \/lib\/ld-musl-x86_64\.so\.1/, out);
    const unresolved = [...out.matchAll(/Error relocating [^:]+: ([^:]+): symbol not found/g)].map((m) => m[1]!);
    assert.ok(unresolved.length > 10, `sanity: node's symbols are reported missing outside node (${unresolved.length})`);
    assert.deepEqual(unresolved.filter((s) => !/^(napi_|uv_)/.test(s)), [], 'C-library symbols musl does not have');
    // and the ones it resolved are the C library's: the object does call into libc
    const used = readelf(['--dyn-syms', musl]).split('\n').filter((l) => / UND /.test(l)).map((l) => l.trim().split(/\s+/)[7]!).filter(Boolean);
    assert.ok(used.includes('accept4') && used.includes('syscall') && used.includes('__errno_location'), used.join(' '));
  });

  it('asked for musl on a glibc node (LIBC=musl): the musl prebuild is picked, does not load, and the portable backend serves with one warning', () => {
    const { report } = child(echoScript, { PREBUILDS_ONLY: '1', LIBC: 'musl' });
    assert.equal(report.file, null);
    assert.match(String(report.error), /^prebuilds\/linux-x64\/megapipe\.musl\.node did not load: /);
    assert.equal(report.backend, 'portable');
    assert.equal(report.same, true);
    assert.equal((report.warnings as string[]).length, 1);
    assert.match((report.warnings as string[])[0]!, /^MP_ERR_BACKEND_UNAVAILABLE: megapipe: using the portable backend \(node:net\): native addon unavailable: prebuilds\/linux-x64\/megapipe\.musl\.node did not load/);
  });

  it('the musl prebuild inside a musl build of node', { skip: 'no musl build of node on this machine (Debian packages none, and nothing may be downloaded): the musl checks above stand in for it' }, () => {});
});
