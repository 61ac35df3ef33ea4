// `npm install`/`npm run build` sweep dist/ of outputs whose source is gone (scripts/clean-dist.mjs, run by `prepare`
// before tsc): tsc never deletes, so a renamed module would otherwise ship in `npm pack` and a deleted test would still
// run under `npm test`. The script runs here on a scratch project laid out like this one.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../../', import.meta.url));

function put(dir: string, rel: string, text = ''): void {
  mkdirSync(dirname(join(dir, rel)), { recursive: true });
  writeFileSync(join(dir, rel), text);
}

describe('scripts/clean-dist.mjs', () => {
  it('removes outputs whose TypeScript source is gone, and nothing else', () => {
    const dir = mkdtempSync(join(tmpdir(), 'megapipe-clean-dist-'));
    try {
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
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('is what prepare and build run before tsc', () => {
    const { scripts } = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
    assert.match(scripts.prepare!, /^node scripts\/clean-dist\.mjs && tsc /);
    assert.match(scripts.build!, /node scripts\/clean-dist\.mjs && tsc /);
  });
});
