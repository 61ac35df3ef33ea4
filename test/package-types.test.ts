// The published types guide a user: a strict TypeScript project (test/fixtures/consumer) compiled against the built
// package — `megapipe` and `megapipe/http` — under moduleResolution node16, nodenext and node (typesVersions). The
// program uses MpEvent's discriminated union without `!`, MpCodeValue, typed Server events, Conn addresses, and
// fails to compile if an internal (`acceptQueued`, `sendPrepared`, `renderHead`, `_push`, `Server.start`) is visible.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync, symlinkSync, writeFileSync, copyFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
const root = fileURLToPath(new URL('../../', import.meta.url));
const tsc = join(root, 'node_modules/typescript/bin/tsc');

let dir = '';
before(() => {
  assert.ok(existsSync(join(root, 'dist/src/index.d.ts')), 'the package is built (dist/src/index.d.ts)');
  dir = mkdtempSync(join(tmpdir(), 'megapipe-consumer-'));
  mkdirSync(join(dir, 'node_modules/@types'), { recursive: true });
  symlinkSync(root, join(dir, 'node_modules/megapipe'), 'dir');
  symlinkSync(join(root, 'node_modules/@types/node'), join(dir, 'node_modules/@types/node'), 'dir');
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }));
  copyFileSync(join(root, 'test/fixtures/consumer/main.ts'), join(dir, 'main.ts'));
});
after(() => { if (dir) rmSync(dir, { recursive: true, force: true }); });

async function compile(module: string, moduleResolution: string): Promise<void> {
  const config = {
    compilerOptions: { target: 'ES2022', module, moduleResolution, strict: true, noEmit: true, skipLibCheck: false, types: ['node'], lib: ['ES2022'] },
    files: ['main.ts'],
  };
  const file = join(dir, `tsconfig.${moduleResolution}.json`);
  writeFileSync(file, JSON.stringify(config));
  try {
    await run(process.execPath, [tsc, '-p', file], { cwd: dir });
  } catch (e) {
    const x = e as { stdout?: string; stderr?: string };
    assert.fail(`tsc (moduleResolution ${moduleResolution}) failed:\n${x.stdout ?? ''}${x.stderr ?? ''}`);
  }
}

describe('the published types (a strict consumer project)', () => {
  it('compile under moduleResolution node16', () => compile('node16', 'node16'));
  it('compile under moduleResolution nodenext', () => compile('nodenext', 'nodenext'));
  it('compile under moduleResolution node (typesVersions for megapipe/http)', () => compile('esnext', 'node'));
});
