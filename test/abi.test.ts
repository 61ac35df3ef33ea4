// The ABI has one source, native/abi.h; src/uring/abi.ts mirrors it. Every constant of the header must be in the mirror
// with the same value, and every member of the mirror in the header: a number spelled differently on the two sides
// (an op, a tag, a row field, a counter slot) would corrupt requests silently.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../../', import.meta.url));

/** C prefix → TypeScript enum (and a name prefix inside it). */
const GROUPS: readonly [string, string, string][] = [
  ['MP_OP_', 'Op', ''], ['MP_ROW_', 'Row', ''], ['MP_F_', 'RowFlag', ''], ['MP_EV_', 'Ev', ''], ['MP_HDR_', 'Hdr', ''],
  ['MP_ST_', 'Stat', ''], ['MP_UD_', 'Ud', ''], ['MP_TAG_', 'Tag', ''], ['MP_KOP_', 'Kernel', 'Op'], ['MP_CQE_', 'Kernel', 'Cqe'],
  ['MP_BOUND_', 'Bound', ''], ['MP_SOCKOPT_', 'SockOpt', ''], ['MP_POLLOUT', 'Kernel', 'PollOut'], ['MP_SHUT_WR', 'Kernel', 'ShutWr'],
];

/** Every constant of native/abi.h (#define NAME VALUE, and enum members NAME = VALUE): name → value. */
function headerConstants(): Map<string, number> {
  const text = readFileSync(`${root}native/abi.h`, 'utf8').replace(/\/\/.*$/gm, '');
  const out = new Map<string, number>();
  for (const m of text.matchAll(/^#define\s+(MP_\w+)\s+(-?(?:0x[0-9a-fA-F]+|\d+))\s*$/gm)) out.set(m[1]!, Number(m[2]));
  for (const m of text.matchAll(/\b(MP_\w+)\s*=\s*(-?(?:0x[0-9a-fA-F]+|\d+))\s*[,}]/g)) out.set(m[1]!, Number(m[2]));
  return out;
}

/** Every member of the const enums of src/uring/abi.ts: "Enum.Member" → value. */
function mirrorConstants(): Map<string, number> {
  const text = readFileSync(`${root}src/uring/abi.ts`, 'utf8').replace(/\/\/.*$/gm, '').replace(/\/\*[\s\S]*?\*\//g, '');
  const out = new Map<string, number>();
  for (const e of text.matchAll(/export const enum (\w+)\s*\{([^}]*)\}/g)) {
    for (const m of e[2]!.matchAll(/(\w+)\s*=\s*(-?(?:0x[0-9a-fA-F]+|\d+))/g)) out.set(`${e[1]}.${m[1]}`, Number(m[2]));
  }
  return out;
}

/** The mirror's name for a header constant: MP_OP_CANCEL_FD → "op.cancelfd" (compared without case or underscores). */
function mirrorName(c: string): string | undefined {
  for (const [prefix, group, inner] of GROUPS) {
    if (prefix.endsWith('_') ? !c.startsWith(prefix) : c !== prefix) continue;
    const rest = prefix.endsWith('_') ? c.slice(prefix.length) : '';
    return `${group}.${inner}${rest}`.replace(/_/g, '').toLowerCase();
  }
  return undefined;
}

describe('ABI: native/abi.h and src/uring/abi.ts', () => {
  const header = headerConstants();
  const mirror = new Map([...mirrorConstants()].map(([k, v]) => [k.toLowerCase(), v] as const));

  it('the header defines the ABI (sanity: the parse found it)', () => {
    assert.ok(header.size > 80, `${header.size} constants`);
    assert.equal(header.get('MP_OP_SEND'), 3);
    assert.equal(header.get('MP_TAG_ACCEPT_FD'), 0x8e);
  });

  it('every constant of the header is in the mirror, with the same value', () => {
    const missing: string[] = [], differ: string[] = [];
    for (const [c, v] of header) {
      const name = mirrorName(c);
      if (name === undefined) { missing.push(`${c} (no group)`); continue; }
      if (!mirror.has(name)) missing.push(`${c} (${name})`);
      else if (mirror.get(name) !== v) differ.push(`${c} = ${v}, ${name} = ${mirror.get(name)}`);
    }
    assert.deepEqual(missing, []);
    assert.deepEqual(differ, []);
  });

  it('every member of the mirror is in the header', () => {
    const names = new Set([...header.keys()].map(mirrorName));
    assert.deepEqual([...mirror.keys()].filter((k) => !names.has(k)), []);
  });

  it('a tag with MP_TAG_FD_RESULT has the bit set (its fd is closed when undelivered)', () => {
    for (const c of ['MP_TAG_FD_INSTALL', 'MP_TAG_ACCEPT_ONE_FD', 'MP_TAG_ACCEPT_FD']) assert.ok((header.get(c)! & header.get('MP_TAG_FD_RESULT')!) !== 0, c);
    for (const c of ['MP_TAG_ACCEPT', 'MP_TAG_ACCEPT_ONE', 'MP_TAG_ACCEPT_KEEP']) assert.equal(header.get(c)! & header.get('MP_TAG_FD_RESULT')!, 0, c);
  });
});
