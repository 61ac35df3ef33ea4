#!/usr/bin/env node
'use strict';
// megapipe's install step. The package ships its C addon prebuilt (prebuilds/linux-x64: glibc and musl); this uses
// one when it loads here, else builds the addon with node-gyp (which needs a C compiler, make and python), and never
// fails the install: without the addon megapipe runs on its portable backend (node:net) and says so once at run time.
// In a git checkout of megapipe (a developer's) the addon is always built from native/, so that a change to the C
// sources is what the tests load; MEGAPIPE_BUILD_FROM_SOURCE=1 asks for that anywhere.
const { spawnSync } = require('node:child_process');
const { existsSync, readdirSync } = require('node:fs');
const path = require('node:path');
const { pathToFileURL } = require('node:url');

const root = path.resolve(__dirname, '..');
const say = (line) => process.stdout.write(`megapipe: ${line}\n`);

/** The addon file that loads in a fresh node (`prebuildsOnly`: a prebuild, build/ ignored), or null. */
function loads(prebuildsOnly) {
  // megapipe's own loader (dist/src/native.js: node-gyp-build, and its C library detection) where it is built
  const runtime = path.join(root, 'dist/src/native.js');
  const script = existsSync(runtime)
    ? `import(${JSON.stringify(pathToFileURL(runtime).href)}).then((m) => { if (!m.native) { console.error(m.nativeLoadError); process.exit(1); } console.log(m.nativeFile); })`
    : `const f = require('node-gyp-build').path(${JSON.stringify(root)}); require(f); console.log(f);`;
  const env = { ...process.env };
  delete env.MEGAPIPE_NO_ADDON;
  if (prebuildsOnly) env.PREBUILDS_ONLY = '1';
  const r = spawnSync(process.execPath, ['-e', script], { cwd: root, env, encoding: 'utf8', timeout: 60_000 });
  return r.status === 0 && r.stdout.trim() !== '' ? r.stdout.trim() : null;
}

/** node-gyp rebuild: npm's own node-gyp when npm runs this (npm_config_node_gyp), else one on PATH. Its output is kept
 * out of the way (npm shows it with --foreground-scripts); returns whether it built. */
function build() {
  const gyp = process.env.npm_config_node_gyp;
  const [cmd, args] = gyp ? [process.execPath, [gyp, 'rebuild']] : ['node-gyp', ['rebuild']];
  const r = spawnSync(cmd, args, { cwd: root, stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8', timeout: 10 * 60_000 });
  if (r.status === 0) return true;
  const lines = `${r.stdout ?? ''}${r.stderr ?? ''}`.split('\n').filter((l) => /ERR!|error|not found/i.test(l));
  if (process.env.npm_config_foreground_scripts === 'true' || process.env.MEGAPIPE_INSTALL_VERBOSE === '1') {
    process.stderr.write(`${r.error ? r.error.message : lines.slice(0, 12).join('\n')}\n`);
  }
  return false;
}

function hasPrebuilds() {
  try { return readdirSync(path.join(root, 'prebuilds')).length > 0; } catch { return false; }
}

function main() {
  const checkout = existsSync(path.join(root, '.git')) || process.env.MEGAPIPE_BUILD_FROM_SOURCE === '1';
  if (!checkout && hasPrebuilds()) {
    const file = loads(true);
    if (file !== null) { say(`using the prebuilt addon ${path.relative(root, file)}`); return; }
  }
  if (build() && loads(false) !== null) { say('built the addon (node-gyp)'); return; }
  if (checkout && hasPrebuilds() && loads(true) !== null) { say('node-gyp could not build the addon: using the prebuilt one'); return; }
  say(`no addon for ${process.platform}-${process.arch} (none prebuilt loads here and node-gyp could not build one): megapipe will use its portable backend (node:net)`);
}

try { main(); } catch (e) {
  say(`install step failed (${e && e.message}): megapipe will use its portable backend (node:net)`);
}
process.exitCode = 0;
