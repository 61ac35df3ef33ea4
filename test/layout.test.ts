// The layout is the architecture (ARCHITECTURE.md): these checks keep it so. They read the TypeScript and C sources
// (not dist/), so they fail on the change that breaks the rule, whatever else builds.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { constants } from 'node:os';
import { MpCode } from '../src/index.js';

const errnoConstants = constants.errno;

const root = fileURLToPath(new URL('../../', import.meta.url));
/** The longest module src/ may have (issue 15: a module does one thing). */
const SRC_LINES_MAX = 600;

function walk(dir: string, ext: RegExp): string[] {
  const out: string[] = [];
  for (const name of readdirSync(join(root, dir))) {
    const rel = join(dir, name);
    if (statSync(join(root, rel)).isDirectory()) out.push(...walk(rel, ext));
    else if (ext.test(name)) out.push(rel);
  }
  return out;
}

interface Import { to: string; typeOnly: boolean }

/** Relative imports of a TypeScript file (imports, re-exports, dynamic imports) as repo paths (.ts); `typeOnly` for
 * `import type`/`export type` (erased: no module loads another through them). */
function importsOf(file: string): Import[] {
  const text = readFileSync(join(root, file), 'utf8');
  const out: Import[] = [];
  for (const m of text.matchAll(/(?:^|\n)\s*(import|export)\s(type\s)?([^'";]*?)from\s+'(\.[^']+)'|import\(\s*'(\.[^']+)'\s*\)/g)) {
    const spec = (m[4] ?? m[5])!;
    // `import { type A, type B }` is type-only too
    const names = m[3] ?? '';
    const typeOnly = m[2] !== undefined || (/^\s*\{/.test(names) && names.replace(/[{}\s]/g, '').split(',').filter(Boolean).every((n) => n.startsWith('type')));
    out.push({ to: relative(root, resolve(dirname(join(root, file)), spec.replace(/\.js$/, '.ts'))), typeOnly });
  }
  return out;
}

/** Every cycle of the import graph over `files` (edges kept by `keep`), as "a → b → a". */
function cycles(files: string[], keep: (from: string, i: Import) => boolean): string[] {
  const graph = new Map(files.map((f) => [f, importsOf(f).filter((i) => files.includes(i.to) && keep(f, i)).map((i) => i.to)]));
  const found: string[] = [];
  const state = new Map<string, 1 | 2>();   // 1: on the path, 2: done
  const path: string[] = [];
  const visit = (f: string): void => {
    state.set(f, 1); path.push(f);
    for (const g of graph.get(f) ?? []) {
      if (state.get(g) === 1) found.push([...path.slice(path.indexOf(g)), g].join(' → '));
      else if (!state.has(g)) visit(g);
    }
    path.pop(); state.set(f, 2);
  };
  for (const f of files) if (!state.has(f)) visit(f);
  return found;
}

describe('layout (ARCHITECTURE.md)', () => {
  const src = walk('src', /\.ts$/);

  it('finds the sources (sanity)', () => {
    assert.ok(src.includes('src/uring/batch.ts') && src.includes('src/channel.ts'), src.join(' '));
    assert.ok(importsOf('src/uring/channel.ts').some((i) => i.to === 'src/uring/batch.ts' && !i.typeOnly));
    assert.ok(importsOf('src/uring/accept.ts').some((i) => i.to === 'src/uring/channel.ts' && i.typeOnly));
  });

  it('no import cycle: none among the modules that load (src/, apps/, bin/), none of any kind across folders', () => {
    const all = [...src, ...walk('apps', /\.ts$/), ...walk('bin', /\.ts$/)];
    assert.deepEqual(cycles(all, (_, i) => !i.typeOnly), [], 'value imports');
    // a part of the io_uring backend may name the channel it belongs to by type (src/uring/send-queue.ts holds a
    // UringChannel): erased, and inside one folder; a type cycle between folders is a layering fault
    assert.deepEqual(cycles(all, (from, i) => !i.typeOnly || dirname(from) !== dirname(i.to)), [], 'type imports across folders');
  });

  it(`no module of src/ is longer than ${SRC_LINES_MAX} lines`, () => {
    const long = src.map((f) => [f, readFileSync(join(root, f), 'utf8').split('\n').length] as const).filter(([, n]) => n > SRC_LINES_MAX);
    assert.deepEqual(long, []);
  });

  it('the apps and bin/ use the library through its public entry point only (src/index.ts)', () => {
    const users = [...walk('apps', /\.ts$/), ...walk('bin', /\.ts$/)];
    const reaching = users.flatMap((f) => importsOf(f).map((i) => i.to).filter((g) => g.startsWith('src/') && g !== 'src/index.ts').map((g) => `${f} → ${g}`));
    assert.deepEqual(reaching, []);
  });

  it('only the io_uring backend and src/sockets.ts call the addon (src/native.ts)', () => {
    const callers = src.filter((f) => importsOf(f).some((i) => i.to === 'src/native.ts' && !i.typeOnly));
    const outside = callers.filter((f) => !f.startsWith('src/uring/') && f !== 'src/sockets.ts' && f !== 'src/backend.ts');
    assert.deepEqual(outside, [], 'backend.ts may ask the addon whether io_uring works (the probe); nothing else outside src/uring/');
  });

  it('every source file a comment names exists', () => {
    const files = [...src, ...walk('native', /\.[ch]$/), ...walk('apps', /\.ts$/), ...walk('bin', /\.ts$/), ...walk('bench', /\.ts$/)];
    const known = new Set<string>();
    for (const f of [...files, ...walk('test', /\.ts$/)]) { known.add(f); known.add(f.split('/').pop()!); }
    for (const f of walk('test', /\.ts$/)) known.add(f.replace(/\.ts$/, '.js'));
    const missing: string[] = [];
    for (const f of files) {
      const text = readFileSync(join(root, f), 'utf8');
      // names in comments: foo.ts, dir/foo.c, foo.h (not URLs, not module specifiers of imports)
      const comments = [...text.matchAll(/\/\/[^\n]*|\/\*[\s\S]*?\*\//g)].map((m) => m[0]).join('\n');
      for (const m of comments.matchAll(/(?<![\w./-])((?:[\w-]+\/)*[\w-]+\.(?:ts|c|h))(?![\w])/g)) {
        const name = m[1]!;
        if (/^(?:node|liburing|io_uring|linux|uv|napi|stdio|stdlib|errno|sys)\b/.test(name) || name.endsWith('.d.ts')) continue;
        const base = name.split('/').pop()!;
        if (!known.has(name) && !known.has(base) && !existsSync(join(root, name))) missing.push(`${f}: ${name}`);
      }
    }
    assert.deepEqual(missing, []);
  });

  it('every MP_ERR_* code the sources raise is named in MpCode (errors.ts)', () => {
    const named = new Set<string>(Object.values(MpCode));
    const raised = new Set<string>();
    for (const f of [...src, ...walk('native', /\.[ch]$/)]) {
      for (const m of readFileSync(join(root, f), 'utf8').matchAll(/MP_ERR_[A-Z_]+/g)) raised.add(m[0]);
    }
    assert.ok(raised.has('MP_ERR_SYSCALL') && raised.has('MP_ERR_OUT_OF_RANGE'), 'sanity: the scan found the addon\'s codes');
    assert.deepEqual([...raised].filter((c) => !named.has(c)), []);
  });

  it('every code a TypeScript MegapipeError is made with is in MpCode or an errno name (src/, apps/, bin/)', () => {
    const keys = new Set(Object.keys(MpCode));
    const named = new Set<string>(Object.values(MpCode));
    const bad: string[] = [];
    let seen = 0;
    for (const f of [...src, ...walk('apps', /\.ts$/), ...walk('bin', /\.ts$/)]) {
      const text = readFileSync(join(root, f), 'utf8');
      for (const m of text.matchAll(/new MegapipeError\(\s*([^,]+),/g)) {
        seen++;
        const arg = m[1]!.trim();
        const key = /^MpCode\.(\w+)$/.exec(arg)?.[1];
        const lit = /^'([A-Z_0-9]+)'$/.exec(arg)?.[1];
        if (key !== undefined ? keys.has(key) : lit !== undefined ? lit in errnoConstants || named.has(lit) : /^[a-z][\w.]*( \?\? '[A-Z]+')?$/.test(arg)) continue;
        bad.push(`${f}: ${arg}`);
      }
      for (const m of text.matchAll(/'(MP_ERR_[A-Z_]+)'/g)) if (!named.has(m[1]!)) bad.push(`${f}: ${m[1]}`);
    }
    assert.ok(seen > 20, 'sanity: the scan found the MegapipeErrors');
    assert.deepEqual(bad, []);
  });
});
