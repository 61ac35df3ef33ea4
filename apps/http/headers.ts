// Read-only, case-insensitive view of a request's header (or trailer) fields. The parser records only byte
// offsets into the request's copied head block; names and values are decoded when asked for. The block and the
// offsets may sit in slabs shared with other requests' (parser.ts), at `base` in the table: never written again.

/** Header fields of a request (or its trailers). Names are case-insensitive; values are Latin-1 decoded. */
export class Fields implements Iterable<[string, string]> {
  /** @internal */
  constructor(
    private readonly buf: Buffer,
    /** 4 offsets into `buf` per field, from `base`: name start, name end, value start, value end */
    private readonly table: Int32Array,
    private readonly base: number,
    /** Number of fields (lines), duplicates counted separately. */
    readonly size: number,
  ) {}

  private index(name: string, from: number): number {
    const n = name.length;
    const t = this.table;
    const b = this.buf;
    for (let f = from; f < this.size; f++) {
      const k = this.base + 4 * f;
      const s = t[k];
      if (t[k + 1] - s !== n) continue;
      let j = 0;
      for (; j < n; j++) {
        let c = b[s + j];
        if (c >= 0x41 && c <= 0x5a) c += 32;
        let d = name.charCodeAt(j);
        if (d >= 0x41 && d <= 0x5a) d += 32;
        if (c !== d) break;
      }
      if (j === n) return f;
    }
    return -1;
  }

  private valueAt(f: number): string {
    const k = this.base + 4 * f;
    return this.buf.toString('latin1', this.table[k + 2], this.table[k + 3]);
  }

  private nameAt(f: number): string {
    const k = this.base + 4 * f;
    return this.buf.toString('latin1', this.table[k], this.table[k + 1]).toLowerCase();
  }

  /** The field's value; several fields of that name are joined with ", " (RFC 9110 §5.3). */
  get(name: string): string | undefined {
    const f = this.index(name, 0);
    if (f < 0) return undefined;
    const g = this.index(name, f + 1);
    if (g < 0) return this.valueAt(f);
    return this.getAll(name).join(', ');
  }

  /** Every value of that name, in order. */
  getAll(name: string): string[] {
    const out: string[] = [];
    for (let f = this.index(name, 0); f >= 0; f = this.index(name, f + 1)) out.push(this.valueAt(f));
    return out;
  }

  has(name: string): boolean {
    return this.index(name, 0) >= 0;
  }

  /** [lower-case name, value] for each field line, in received order (duplicates not merged). */
  *entries(): IterableIterator<[string, string]> {
    for (let f = 0; f < this.size; f++) yield [this.nameAt(f), this.valueAt(f)];
  }

  [Symbol.iterator](): IterableIterator<[string, string]> {
    return this.entries();
  }

  /** A plain object of lower-case names to values (duplicates joined with ", "). */
  toObject(): Record<string, string> {
    const o: Record<string, string> = Object.create(null);
    for (const [k, v] of this.entries()) o[k] = k in o ? o[k] + ', ' + v : v;
    return o;
  }
}

export const EMPTY_FIELDS = new Fields(Buffer.alloc(0), new Int32Array(0), 0, 0);
