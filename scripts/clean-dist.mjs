// Removes compiled files from dist/ whose TypeScript source no longer exists, before each build (`prepare`).
// tsc never deletes outputs: without this, a renamed or deleted module stays in dist/ — shipped by `npm pack`, and a
// deleted test still run by `npm test` (dist/test/*.test.js). Only the directories tsconfig.json compiles are
// looked at; anything else under dist/ (the README examples the tests generate in dist/readme) is left alone.
//   node scripts/clean-dist.mjs [ROOT]     (ROOT: the project directory, default the current one)
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join, relative } from 'node:path';
import ts from 'typescript';

const root = process.argv[2] ?? process.cwd();
const OUTPUT = /(\.d)?\.ts\.map$|\.js\.map$|\.d\.ts$|\.js$/;

function compiledDirs() {
  // as tsc reads it: comments and trailing commas are allowed (JSON.parse would stop `npm install` on them)
  const { config, error } = ts.parseConfigFileTextToJson('tsconfig.json', readFileSync(join(root, 'tsconfig.json'), 'utf8'));
  if (error !== undefined) throw new Error(`clean-dist: tsconfig.json: ${ts.flattenDiagnosticMessageText(error.messageText, '\n')}`);
  return (config.include ?? []).filter((d) => /^[\w.-]+$/.test(d));
}

function sweep(dir, removed) {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) { sweep(path, removed); continue; }
    if (!OUTPUT.test(entry.name)) continue;
    const source = join(root, relative(join(root, 'dist'), dir), entry.name.replace(OUTPUT, '.ts'));
    if (!existsSync(source)) { rmSync(path); removed.push(relative(root, path)); }
  }
}

const removed = [];
for (const d of compiledDirs()) if (existsSync(join(root, 'dist', d))) sweep(join(root, 'dist', d), removed);
if (removed.length > 0) console.log(`clean-dist: removed ${removed.length} stale file(s): ${removed.join(', ')}`);
