// megapipe's version, as its package.json says (the bins' --version): read once, from the package this file ships in.
import { readFileSync } from 'node:fs';

function readVersion(): string {
  // dist/src/version.js → ../../package.json; src/version.ts run directly → ../package.json
  for (const rel of ['../../package.json', '../package.json']) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(rel, import.meta.url), 'utf8')) as { name?: unknown; version?: unknown };
      if (pkg.name === 'megapipe' && typeof pkg.version === 'string') return pkg.version;
    } catch { /* not this one */ }
  }
  return '0.0.0-unknown';
}

/** megapipe's version (package.json's `version`). */
export const version: string = readVersion();
