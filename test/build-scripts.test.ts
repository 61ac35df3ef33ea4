// The two steps `npm install`/`npm run build` run around tsc, each on a scratch project laid out like this one:
// scripts/clean-dist.mjs sweeps dist/ of outputs whose source is gone (tsc never deletes: a renamed module would ship
// in `npm pack`, a deleted test would still run under `npm test`); scripts/build-stamp.mjs writes dist/build.json,
// the commit the build comes from, which the benchmark summaries quote (bench/lib/results.ts buildOf).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { buildOf } from '../bench/lib/results.js';
import { ensureCPrograms } from '../bench/lib/paths.js';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../../', import.meta.url));

/** Runs fn in a new scratch directory, removed afterwards whatever happens. */
function withScratch(prefix: string, fn: (dir: string) => void): void {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  try { fn(dir); } finally { rmSync(dir, { recursive: true, force: true }); }
}

function put(dir: string, rel: string, text = ''): void {
  mkdirSync(dirname(join(dir, rel)), { recursive: true });
  writeFileSync(join(dir, rel), text);
}

describe('scripts/clean-dist.mjs', () => {
  it('removes outputs whose TypeScript source is gone, and nothing else', () => {
    withScratch('megapipe-clean-dist-', (dir) => {
      put(dir, 'tsconfig.json', JSON.stringify({ include: ['src', 'test'] }));
      const kept = ['src/a.ts', 'src/deep/b.ts', 'test/t.test.ts'];
      for (const s of kept) put(dir, s, '// source');
      const outputs = (rel: string): string[] => {
        const base = rel.replace(/\.ts$/, '');
        return [`dist/${base}.js`, `dist/${base}.d.ts`, `dist/${base}.js.map`, `dist/${base}.d.ts.map`];
      };
      const live = kept.flatMap(outputs);
      const stale = ['src/gone.ts', 'src/deep/old.ts', 'test/deleted.test.ts'].flatMap(outputs);
      const foreign = ['dist/readme/example.js', 'dist/readme/example.ts', 'dist/other/x.js', 'dist/src/data.json'];
      for (const f of [...live, ...stale, ...foreign]) put(dir, f, 'output');

      const r = spawnSync(process.execPath, [join(root, 'scripts/clean-dist.mjs'), dir], { encoding: 'utf8', timeout: 30_000 });
      assert.equal(r.status, 0, r.stderr);
      assert.deepEqual(stale.filter((f) => existsSync(join(dir, f))), [], 'stale outputs left');
      assert.deepEqual([...live, ...foreign].filter((f) => !existsSync(join(dir, f))), [], 'live or foreign files removed');
      assert.match(r.stdout, /removed 12 stale file\(s\)/);
      for (const s of kept) assert.equal(readFileSync(join(dir, s), 'utf8'), '// source');

      // a second run has nothing to do and says nothing
      const again = spawnSync(process.execPath, [join(root, 'scripts/clean-dist.mjs'), dir], { encoding: 'utf8', timeout: 30_000 });
      assert.equal(again.status, 0, again.stderr);
      assert.equal(again.stdout, '');
    });
  });

  it('reads tsconfig.json as tsc does: comments and trailing commas do not stop the build', () => {
    withScratch('megapipe-clean-dist-', (dir) => {
      put(dir, 'tsconfig.json', '{\n  // what tsc compiles\n  "compilerOptions": { "outDir": "dist", },\n  /* sources */ "include": ["src", "test",],\n}\n');
      put(dir, 'src/a.ts', '// source');
      for (const f of ['dist/src/a.js', 'dist/src/gone.js', 'dist/src/gone.d.ts']) put(dir, f, 'output');
      const r = spawnSync(process.execPath, [join(root, 'scripts/clean-dist.mjs'), dir], { encoding: 'utf8', timeout: 30_000 });
      assert.equal(r.status, 0, r.stderr);
      assert.deepEqual(['dist/src/a.js', 'dist/src/gone.js', 'dist/src/gone.d.ts'].filter((f) => existsSync(join(dir, f))), ['dist/src/a.js']);
    });
  });
});

describe('scripts/build-stamp.mjs and the summaries\' build line', () => {
  const git = (dir: string, ...args: string[]): string => {
    const r = spawnSync('git', ['-c', 'user.name=t', '-c', 'user.email=t@t', ...args], { cwd: dir, encoding: 'utf8', timeout: 30_000 });
    assert.equal(r.status, 0, r.stderr);
    return r.stdout.trim();
  };
  // a new repository of `files` (path → text), committed; its HEAD
  const repo = (dir: string, files: Record<string, string>, message: string): string => {
    git(dir, 'init', '-q');
    for (const [rel, text] of Object.entries(files)) put(dir, rel, text);
    git(dir, 'add', '-A');
    git(dir, 'commit', '-qm', message);
    return git(dir, 'rev-parse', 'HEAD');
  };
  const stamp = (dir: string): void => {
    const r = spawnSync(process.execPath, [join(root, 'scripts/build-stamp.mjs'), dir], { encoding: 'utf8', timeout: 30_000 });
    assert.equal(r.status, 0, r.stderr);
  };

  it('records the commit and the files that differed from it; buildOf reads it from any file under dist/', () => {
    withScratch('megapipe-build-stamp-', (dir) => {
      const variant = join(dir, 'dist/apps/http/cli.js');
      assert.equal(buildOf(variant).commit, null);
      assert.match(buildOf(variant).text, /no build stamp/);
      const head = repo(dir, { 'src/a.ts': 'one', '.gitignore': 'dist/\n' }, 'first');
      stamp(dir);
      const clean = JSON.parse(readFileSync(join(dir, 'dist/build.json'), 'utf8')) as { commit: string; dirty: string[] };
      assert.equal(clean.commit, head);
      assert.deepEqual(clean.dirty, []);
      put(dir, 'dist/apps/http/cli.js', '');
      assert.deepEqual(buildOf(variant), { commit: head, text: `compiled from ${head.slice(0, 12)}` });

      put(dir, 'src/a.ts', 'two');                       // a change not committed: built into dist/ all the same
      put(dir, 'bench/summaries/x/summary.md', 'r');     // a recorded summary is not code
      stamp(dir);
      assert.deepEqual(buildOf(variant), { commit: head, text: `compiled from ${head.slice(0, 12)} with 1 file changed (src/a.ts)` });
    });
  });

  it('a project inside another repository (an application\'s node_modules kept in git) names no commit', () => {
    withScratch('megapipe-build-stamp-', (dir) => {
      repo(dir, { 'app.js': 'one', 'node_modules/megapipe/src/a.ts': 'one' }, 'the application');
      const pkg = join(dir, 'node_modules/megapipe');
      stamp(pkg);
      const b = JSON.parse(readFileSync(join(pkg, 'dist/build.json'), 'utf8')) as { commit: string | null; dirty: string[] };
      assert.deepEqual([b.commit, b.dirty], [null, []], 'the application\'s HEAD is not the package\'s commit');
      assert.match(buildOf(join(pkg, 'dist')).text, /outside a git checkout/);
    });
  });

  it('a stamp older than the compiled files (tsc run alone afterwards, or a failed build that emitted) names no commit', () => {
    withScratch('megapipe-build-stamp-', (dir) => {
      const head = repo(dir, { 'src/a.ts': 'one', '.gitignore': 'dist/\n' }, 'first');
      put(dir, 'dist/src/index.js', '');
      put(dir, 'dist/apps/http/cli.js', '');
      stamp(dir);
      const variant = join(dir, 'dist/apps/http/cli.js');
      assert.equal(buildOf(variant).commit, head);
      assert.equal(buildOf(join(dir, 'dist')).commit, head);
      // `npx tsc -p tsconfig.json` a minute later (another commit checked out, files edited): every output rewritten,
      // the stamp left as it was
      const later = new Date(Date.now() + 60_000);
      utimesSync(join(dir, 'dist/src/index.js'), later, later);
      utimesSync(variant, later, later);
      for (const p of [variant, join(dir, 'dist')]) {
        const b = buildOf(p);
        assert.equal(b.commit, null, `${p}: the stamp does not describe these files`);
        assert.match(b.text, /compiled after its build stamp/);
      }
    });
  });
});

it('prepare and build run the clean before tsc and the stamp after it', () => {
  const { scripts } = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
  assert.match(scripts.prepare!, /^node scripts\/clean-dist\.mjs && tsc -p tsconfig\.json && node scripts\/build-stamp\.mjs$/);
  assert.match(scripts.build!, /node scripts\/clean-dist\.mjs && tsc -p tsconfig\.json && node scripts\/build-stamp\.mjs$/);
});

describe('bench/lib/paths.ts ensureCPrograms', () => {
  it('builds the C programs when missing, keeps them when current, rebuilds them when a source is newer', { skip: spawnSync('make', ['--version']).error ? 'no make' : false }, () => {
    withScratch('megapipe-cprogs-', (dir) => {
      const src = join(root, 'bench', 'c');
      for (const f of readdirSync(src)) if (/\.(c|h)$|^Makefile$/.test(f)) copyFileSync(join(src, f), join(dir, f));
      const bin = join(dir, 'bin', 'epoll-echo');
      ensureCPrograms(['epoll-echo'], dir);
      assert.ok(existsSync(bin), 'built when missing');
      const old = new Date(Math.floor(Date.now() / 1000) * 1000 - 3_600_000); // whole seconds: utimes rounds
      utimesSync(bin, old, old);
      for (const f of readdirSync(dir)) if (/\.(c|h)$|^Makefile$/.test(f)) utimesSync(join(dir, f), new Date(old.getTime() - 60_000), new Date(old.getTime() - 60_000));
      ensureCPrograms(['epoll-echo'], dir);
      assert.ok(Math.abs(statSync(bin).mtimeMs - old.getTime()) < 1, 'a current program is not rebuilt');
      const now = new Date();
      utimesSync(join(dir, 'common.h'), now, now);
      ensureCPrograms(['epoll-echo'], dir);
      assert.ok(statSync(bin).mtimeMs > old.getTime() + 1000, 'a program older than a header it includes is rebuilt');
    });
  });
});
