// The package as a user gets it: `npm pack` of this project, installed from the tarball into a fresh project whose
// PATH holds node, npm and sh only (no cc, gcc, g++, make or python), so that node-gyp fails when tried (npm hands a
// dependency's install script its own bundled node-gyp whatever npm_config_node_gyp says: that one runs, and fails for
// want of python, make and a compiler). Proven: the install never fails; with the prebuilds a tiny ESM program serves
// on io_uring (with the install script run, and with --ignore-scripts: the loader finds the prebuild by itself); without
// them it serves on node:net with one warning. Also: what the tarball holds (and does not: tests, benchmarks, test
// helpers), and each installed command's --version. Bounded: every npm and node call has a time limit.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { uringExpectation } from './uring-expected.js';
import { echoProgram } from './fixtures/echo-program.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as {
  name: string; version: string; bin: Record<string, string>; exports: Record<string, string | Record<string, string>>; files: string[];
};
const prebuilt = existsSync(join(root, 'prebuilds/linux-x64/megapipe.glibc.node'));
if (process.env.MEGAPIPE_EXPECT_PREBUILDS === '1' && !prebuilt) throw new Error('MEGAPIPE_EXPECT_PREBUILDS=1 but prebuilds/ is not built (npm run prebuilds)');
const noPrebuilds = prebuilt ? false : 'prebuilds/ is not built (npm run prebuilds)';
const linuxX64 = process.platform === 'linux' && process.arch === 'x64' ? false : `the prebuilds are linux-x64; this is ${process.platform}-${process.arch}`;

let tmp = '';
let tarball = '';          // as packed
let bare = '';             // the same package without prebuilds/
let packed: string[] = [];
let bin = '';              // the stripped PATH

interface Run { status: number | null; stdout: string; stderr: string }
function run(cmd: string, args: string[], opts: { cwd: string; env?: NodeJS.ProcessEnv; timeoutMs?: number }): Run {
  const r = spawnSync(cmd, args, { cwd: opts.cwd, env: opts.env ?? process.env, encoding: 'utf8', timeout: opts.timeoutMs ?? 120_000, maxBuffer: 64 << 20 });
  if (r.error) throw r.error;
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** A user's environment: PATH = node, npm, sh; no npm_* (npm test's own), MEGAPIPE_*, LIBC, no python named. */
function userEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (/^(npm_|INIT_CWD$|MEGAPIPE_|LIBC$|PREBUILDS_ONLY$|NODE_OPTIONS$|PYTHON|NODE_GYP_FORCE_PYTHON$|CC$|CXX$|MAKE$)/i.test(k)) continue;
    env[k] = v;
  }
  env.PATH = bin;
  return env;
}

/** A fresh project in which `tgz` is installed with `flags`; the install's output. */
function install(name: string, tgz: string, flags: string[], allowScripts: boolean): { dir: string; out: Run } {
  const dir = join(tmp, name);
  mkdirSync(dir);
  const manifest: Record<string, unknown> = { name: `consumer-${name}`, private: true, type: 'module' };
  // npm 11 runs a dependency's install script only when the project allows it (older npm always does)
  if (allowScripts) manifest.allowScripts = { [`file:${tgz}`]: true };
  writeFileSync(join(dir, 'package.json'), JSON.stringify(manifest));
  writeFileSync(join(dir, 'main.mjs'), PROGRAM);
  const out = run('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', '--foreground-scripts', ...flags, tgz], { cwd: dir, env: userEnv() });
  return { dir, out };
}

// The user's program: an echo server on megapipe, 64 KB through it, then its backend and the warnings it saw.
const PROGRAM = echoProgram({ megapipe: 'megapipe', bytes: 65536 });

function serveOnce(dir: string): { backend: string; same: boolean; warnings: string[] } {
  const r = run(process.execPath, ['main.mjs'], { cwd: dir, env: userEnv(), timeoutMs: 60_000 });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as { backend: string; same: boolean; warnings: string[] };
}

before(() => {
  tmp = mkdtempSync(join(tmpdir(), 'megapipe-package-'));
  // the packed tarball, as `npm publish` would make it (dist/ is built: this test runs from it)
  const p = run('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', tmp], { cwd: root });
  assert.equal(p.status, 0, p.stderr);
  const info = (JSON.parse(p.stdout) as { filename: string; files: { path: string }[] }[])[0]!;
  tarball = join(tmp, info.filename);
  packed = info.files.map((f) => f.path).sort();
  // the same package without its prebuilds (a platform none is built for)
  const stage = join(tmp, 'stage');
  mkdirSync(stage);
  assert.equal(run('tar', ['xzf', tarball, '-C', stage], { cwd: tmp }).status, 0);
  rmSync(join(stage, 'package/prebuilds'), { recursive: true, force: true });
  mkdirSync(join(tmp, 'bare'));
  const b = run('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', join(tmp, 'bare')], { cwd: join(stage, 'package'), env: userEnvLoose() });
  assert.equal(b.status, 0, b.stderr);
  bare = join(tmp, 'bare', (JSON.parse(b.stdout) as { filename: string }[])[0]!.filename);
  // PATH: node, npm and sh, nothing else
  bin = join(tmp, 'bin');
  mkdirSync(bin);
  for (const [name, target] of [['node', process.execPath], ['npm', which('npm')], ['sh', which('sh')]] as const) symlinkSync(target, join(bin, name));
});
after(() => { if (tmp) rmSync(tmp, { recursive: true, force: true }); });

function which(name: string): string {
  const r = spawnSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' });
  assert.equal(r.status, 0, `${name} is on PATH`);
  return r.stdout.trim();
}
/** npm's environment without npm test's own npm_* variables (which would point npm at this project). */
function userEnvLoose(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!/^(npm_|INIT_CWD$)/i.test(k)) env[k] = v;
  return env;
}

describe('the package (npm pack)', () => {
  it('ships the library, the commands, the addon (sources and prebuilds), the READMEs, the changelog and the licence, and nothing test-only', () => {
    const must = ['LICENSE', 'README.md', 'CHANGELOG.md', 'package.json', 'binding.gyp', 'scripts/install-addon.cjs', 'native/addon.c', 'native/abi.h',
      'apps/http/README.md', 'apps/memcached/README.md', 'dist/src/index.js', 'dist/src/index.d.ts', 'dist/src/native.js',
      ...Object.values(pkg.bin).map((f) => f.replace(/^\.\//, '')),
      ...Object.values(pkg.exports).flatMap((e) => typeof e === 'string' ? [e] : Object.values(e)).map((f) => f.replace(/^\.\//, '')),
      ...(prebuilt ? ['prebuilds/linux-x64/megapipe.glibc.node', 'prebuilds/linux-x64/megapipe.musl.node'] : [])];
    assert.deepEqual(must.filter((f) => !packed.includes(f)), [], 'missing from the tarball');
    const testOnly = packed.filter((f) => /^(test|bench|src|bin)\/|^apps\/[^/]+\/[^/]+\.ts$|^dist\/(test|bench)\/|^build\/|node_modules|testkit|microbench|fixture|\.test\.|\.tsbuildinfo$/.test(f));
    assert.deepEqual(testOnly, [], 'test-only or source files in the tarball');
    assert.deepEqual(packed.filter((f) => !/^(dist\/(src|bin|apps)\/|prebuilds\/linux-x64\/megapipe\.(glibc|musl)\.node$|native\/|apps\/(http|memcached)\/README\.md$|LICENSE$|README\.md$|CHANGELOG\.md$|package\.json$|binding\.gyp$|scripts\/install-addon\.cjs$)/.test(f)), [], 'files outside the declared set');
    const lic = readFileSync(join(root, 'LICENSE'), 'utf8');
    assert.match(lic, /^MIT License\n\nCopyright \(c\) 2026 megapipe contributors\n/);
    assert.equal((pkg as unknown as { license: string }).license, 'MIT');
  });

  it('the stripped PATH has no compiler, make or python (the premise of what follows)', () => {
    for (const tool of ['cc', 'gcc', 'g++', 'clang', 'make', 'python', 'python3']) {
      const r = spawnSync(join(bin, 'sh'), ['-c', `command -v ${tool}`], { env: { PATH: bin }, encoding: 'utf8' });
      assert.notEqual(r.status, 0, `${tool} found: ${r.stdout}`);
    }
  });

  it('install script run, prebuilds present, no compiler: the install uses the prebuild; the program serves on io_uring; each command prints the version', { skip: linuxX64 || noPrebuilds }, () => {
    const { dir, out } = install('with-script', tarball, [], true);
    assert.equal(out.status, 0, `${out.stdout}${out.stderr}`);
    assert.match(out.stdout, /megapipe: using the prebuilt addon prebuilds\/linux-x64\/megapipe\.glibc\.node/);
    assert.doesNotMatch(`${out.stdout}${out.stderr}`, /gyp ERR!/, 'node-gyp was not needed');
    assert.equal(existsSync(join(dir, 'node_modules/megapipe/build')), false, 'nothing was compiled');
    const r = serveOnce(dir);
    assert.equal(r.same, true);
    if (uringExpectation().expected) {
      assert.equal(r.backend, 'uring');
      assert.deepEqual(r.warnings, []);
    }
    for (const name of Object.keys(pkg.bin)) {
      const v = run(join(dir, 'node_modules/.bin', name), [name === 'megapipe-memcached' ? '-V' : '--version'], { cwd: dir, env: userEnv(), timeoutMs: 30_000 });
      assert.equal(v.stdout, `${name} ${pkg.version}\n`, v.stderr);
      assert.equal(v.status, 0);
    }
  });

  it('--ignore-scripts, prebuilds present: no install step ran, and the loader still finds the prebuild (io_uring)', { skip: linuxX64 || noPrebuilds }, () => {
    const { dir, out } = install('ignore-scripts', tarball, ['--ignore-scripts'], true);
    assert.equal(out.status, 0, `${out.stdout}${out.stderr}`);
    assert.doesNotMatch(out.stdout, /megapipe: /, 'the install script did not run');
    const r = serveOnce(dir);
    assert.equal(r.same, true);
    if (uringExpectation().expected) assert.equal(r.backend, 'uring');
  });

  it('--ignore-scripts, no prebuilds: the install succeeds and the program serves on node:net with one warning', () => {
    const { dir, out } = install('bare-ignore-scripts', bare, ['--ignore-scripts'], true);
    assert.equal(out.status, 0, `${out.stdout}${out.stderr}`);
    const r = serveOnce(dir);
    assert.equal(r.backend, 'portable');
    assert.equal(r.same, true);
    assert.equal(r.warnings.length, 1, JSON.stringify(r.warnings));
    assert.match(r.warnings[0]!, /^MP_ERR_BACKEND_UNAVAILABLE: megapipe: using the portable backend \(node:net\): native addon unavailable: no addon built for linux-x64/);
  });

  it('install script run, no prebuilds, no compiler: node-gyp is tried and fails, the install still succeeds saying node:net will be used', () => {
    const { dir, out } = install('bare-with-script', bare, [], true);
    assert.equal(out.status, 0, `${out.stdout}${out.stderr}`);
    // (with --foreground-scripts the install script passes on node-gyp's error lines)
    assert.match(`${out.stdout}${out.stderr}`, /gyp ERR!/, 'the install script tried node-gyp, which failed');
    const said = out.stdout.split('\n').filter((l) => l.startsWith('megapipe: '));
    assert.deepEqual(said, ['megapipe: no addon for linux-x64 (none prebuilt loads here and node-gyp could not build one): megapipe will use its portable backend (node:net)']);
    const r = serveOnce(dir);
    assert.equal(r.backend, 'portable');
    assert.equal(r.same, true);
    assert.equal(r.warnings.length, 1, JSON.stringify(r.warnings));
  });
});
