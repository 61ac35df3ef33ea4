// Harness of the request-parser tests: feed an input to a RequestParser whole or split at given offsets (each piece
// from a scratch buffer clobbered afterwards) and summarise the events it reported. A whole head in one input takes
// the parser's fast path; split inputs take its byte-by-byte state machine.

import assert from 'node:assert/strict';
import type { Fields } from '../apps/http/headers.js';
import { DEFAULT_LIMITS, RequestParser, type ParserLimits, type RequestHead } from '../apps/http/parser.js';

/** The events a parser reported. */
export interface Rec {
  heads: RequestHead[];
  bodies: Buffer[];
  trailers: (Fields | null)[];
  completes: number;
  error: [number, string] | null;
}

/** A parser with `limits` over DEFAULT_LIMITS whose events are recorded in `r` (body views copied). */
export function recorder(limits: Partial<ParserLimits> = {}): { p: RequestParser; r: Rec } {
  const r: Rec = { heads: [], bodies: [], trailers: [], completes: 0, error: null };
  let cur: Buffer[] = [];
  const p = new RequestParser({ ...DEFAULT_LIMITS, ...limits }, {
    onHead(h) {
      r.heads.push(h);
      cur = [];
    },
    onBody(b, o, l) {
      cur.push(Buffer.from(b.subarray(o, o + l)));
    },
    onComplete(t) {
      r.completes++;
      r.bodies.push(Buffer.concat(cur));
      r.trailers.push(t);
    },
    onError(s, reason) {
      assert.equal(r.error, null, 'onError twice');
      r.error = [s, reason];
    },
  });
  return { p, r };
}

/** Feed `input` cut at the offsets `splits` (ascending) to a fresh parser; returns its events. */
export function feedAll(input: Buffer, splits: number[], limits?: Partial<ParserLimits>): Rec {
  const { p, r } = recorder(limits);
  let prev = 0;
  for (const s of [...splits, input.length]) {
    // each chunk is fed from a scratch buffer that is overwritten afterwards: the parser must copy what it keeps
    const chunk = Buffer.from(input.subarray(prev, s));
    const n = p.execute(chunk, 0, chunk.length);
    assert.equal(n, chunk.length);
    chunk.fill(0x58);
    prev = s;
  }
  return r;
}

export interface HeadSummary {
  method: string;
  target: string;
  minor: number;
  cl: number;
  chunked: boolean;
  keepAlive: boolean;
  expect: boolean;
  fields: [string, string][];
}

export interface Summary {
  heads: HeadSummary[];
  bodies: string[];
  trailers: ([string, string][] | null)[];
  completes: number;
  /** the status of the fault, null when none */
  error: number | null;
}

/** A comparable summary of the events (header values decoded after the input buffers were clobbered). */
export function summary(r: Rec): Summary {
  return {
    heads: r.heads.map((h) => ({
      method: h.method, target: h.target, minor: h.minor, cl: h.contentLength, chunked: h.chunked,
      keepAlive: h.keepAlive, expect: h.expectContinue, fields: [...h.fields.entries()],
    })),
    bodies: r.bodies.map((b) => b.toString('latin1')),
    trailers: r.trailers.map((t) => (t ? [...t.entries()] : null)),
    completes: r.completes,
    error: r.error ? r.error[0] : null,
  };
}

