// Options objects: the checks every public entry point makes before reading one — an object, with known keys only.
// A misspelt or unknown key is a TypeError naming it (and the keys allowed), not silently ignored.
import { MpCode, argError } from './errors.js';

/** The keys of options type T, each listed once (the compiler checks the list against T: none missing, none extra). */
export function optionKeys<T>(keys: { readonly [K in keyof Required<T>]: true }): readonly string[] {
  return Object.keys(keys);
}

/**
 * Checks that `options` (named `what` in errors) is an object whose own keys are all in `known`; returns it.
 * `undefined` is taken as `{}`. A key whose value is `undefined` counts as absent.
 */
export function checkOptions<T extends object>(options: T | undefined, known: readonly string[], what = 'options'): T {
  if (options === undefined) return {} as T;
  if (options === null || typeof options !== 'object' || Array.isArray(options)) throw argError(what, 'an object', options);
  for (const k of Object.keys(options)) {
    if (!known.includes(k) && (options as Record<string, unknown>)[k] !== undefined) {
      throw unknownOption(what, k, known);
    }
  }
  return options;
}

function unknownOption(what: string, key: string, known: readonly string[]): TypeError {
  const e = new TypeError(`${what}: unknown option '${key}' (known: ${known.join(', ')})`) as TypeError & { code: string };
  e.code = MpCode.INVALID_ARG;
  return e;
}
