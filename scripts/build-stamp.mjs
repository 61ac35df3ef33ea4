// Writes dist/build.json after each build (`prepare`, `npm run build`): the commit the TypeScript was compiled from
// and whether the working tree differed from it. The benchmark summaries quote it beside git's HEAD, so a figure
// cannot silently come from a dist/ older than the checkout — or from a variant build of unknown origin.
//   node scripts/build-stamp.mjs [ROOT]     (ROOT: the project directory, default the current one)
import { spawnSync } from 'node:child_process';
import { mkdirSync, realpathSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const root = process.argv[2] ?? process.cwd();
const git = (...args) => spawnSync('git', args, { cwd: root, encoding: 'utf8' });
// the project's own repository only: a package unpacked inside another repository (node_modules of an application
// kept in git) was not compiled from that repository's HEAD
const top = git('rev-parse', '--show-toplevel');
const own = top.status === 0 && realpathSync(top.stdout.trim()) === realpathSync(root);
const head = own ? git('rev-parse', 'HEAD') : null;
const commit = head && head.status === 0 ? head.stdout.trim() : null;
// files that differ from the commit (as bench/lib/results.ts counts them: recorded summaries are not code)
const dirty = commit === null ? [] : git('status', '--porcelain', '--untracked-files=all').stdout.split('\n').filter((l) => l.trim() !== '')
  .map((l) => l.slice(3)).filter((f) => !f.startsWith('bench/summaries/'));
mkdirSync(join(root, 'dist'), { recursive: true });
writeFileSync(join(root, 'dist', 'build.json'), JSON.stringify({ commit, dirty, builtAt: new Date().toISOString() }) + '\n');
