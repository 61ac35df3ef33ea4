#!/usr/bin/env node
// npm run prebuilds: the addon prebuilt for the package, prebuilds/linux-x64/megapipe.glibc.node and
// megapipe.musl.node (prebuildify --napi --strip --tag-libc; Node-API, so one build serves every node ≥ 20). The musl
// one is compiled and linked by musl-gcc (Debian's musl-tools) with the kernel's uapi headers (linux/io_uring.h), and
// checked: it must need musl's libc.so and no glibc-versioned symbol. Each is built in a scratch copy of binding.gyp
// and native/, so build/ (the developer's own build) is left as it was. Not shipped: the package carries its output.
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const prebuildify = join(root, 'node_modules/prebuildify/bin.js');
const out = join(root, 'prebuilds', `${process.platform}-${process.arch}`);

function fail(msg) { process.stderr.write(`prebuilds: ${msg}\n`); process.exit(1); }
function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { stdio: 'inherit', timeout: 10 * 60_000, ...opts });
  if (r.status !== 0) fail(`${cmd} ${args.join(' ')} failed (${r.error?.message ?? `exit ${r.status}`})`);
}
function which(name) { return spawnSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' }).stdout.trim() || null; }

if (process.platform !== 'linux' || process.arch !== 'x64') fail(`builds linux-x64 prebuilds; this is ${process.platform}-${process.arch}`);
if (!existsSync(prebuildify)) fail('prebuildify is missing: npm install first');
if (which('musl-gcc') === null) fail('musl-gcc is missing: apt-get install musl-tools');

rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });

/** A scratch copy of what node-gyp builds from. */
function scratch() {
  const dir = mkdtempSync(join(tmpdir(), 'megapipe-prebuild-'));
  for (const f of ['binding.gyp', 'native']) cpSync(join(root, f), join(dir, f), { recursive: true });
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'megapipe', private: true }));
  return dir;
}

// node-gyp: npm's own, which npm puts on PATH for its scripts (npm run prebuilds), with npm's settings (nodedir)
const env = { ...process.env };
if (which('node-gyp') === null) fail('node-gyp is not on PATH: run this as npm run prebuilds');
const common = ['--napi', '--strip', '--tag-libc', '--target', `node@${process.versions.node}`, '--out', root];

for (const libc of ['glibc', 'musl']) {
  const dir = scratch();
  try {
    const flavour = { ...env };
    if (libc === 'musl') {
      // musl's include path leaves out /usr/include: give it the kernel's uapi headers alone (as Alpine's linux-headers)
      const kernel = join(dir, 'kernel-include');
      mkdirSync(kernel);
      for (const [name, from] of [['linux', '/usr/include/linux'], ['asm-generic', '/usr/include/asm-generic'], ['asm', `/usr/include/${process.arch === 'x64' ? 'x86_64' : process.arch}-linux-gnu/asm`]]) {
        if (!existsSync(from)) fail(`${from} is missing (Debian's linux-libc-dev)`);
        symlinkSync(from, join(kernel, name));
      }
      Object.assign(flavour, { CC: 'musl-gcc', CXX: 'musl-gcc', LINK: 'musl-gcc', CFLAGS: `${env.CFLAGS ?? ''} -isystem ${kernel}`.trim() });
    }
    run(process.execPath, [prebuildify, ...common, '--libc', libc, '--cwd', dir], { env: flavour });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

// the musl build must be musl's: linked against its libc.so, with no glibc symbol version anywhere
const musl = join(out, 'megapipe.musl.node');
const dyn = spawnSync('readelf', ['-d', '-V', musl], { encoding: 'utf8' });
if (dyn.status !== 0) fail(`readelf ${musl}: ${dyn.stderr}`);
const needed = [...dyn.stdout.matchAll(/\(NEEDED\)\s+Shared library: \[([^\]]+)\]/g)].map((m) => m[1]);
if (needed.join() !== 'libc.so' || /GLIBC_/.test(dyn.stdout)) fail(`${musl} is not a musl build: needs ${needed.join(', ')}${/GLIBC_/.test(dyn.stdout) ? ', glibc symbol versions' : ''}`);
process.stdout.write(`prebuilds: ${out}: megapipe.glibc.node, megapipe.musl.node (needs ${needed.join(', ')})\n`);
