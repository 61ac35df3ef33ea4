// Command-line flags of the bench scripts.

/**
 * A checker of number flags for a script whose usage errors end in `die`: `num(name, value, lo, hi, integer)` is the
 * value, or `die("--name must be an integer in lo..hi (got value)")`.
 */
export function numberFlags(die: (msg: string) => never): (name: string, v: string, lo: number, hi: number, integer?: boolean) => number {
  return (name, v, lo, hi, integer = true) => {
    const n = Number(v);
    if (!Number.isFinite(n) || (integer && !Number.isInteger(n)) || n < lo || n > hi) die(`--${name} must be ${integer ? 'an integer' : 'a number'} in ${lo}..${hi} (got ${v})`);
    return n;
  };
}
