// Bugs the soak has found that are not fixed yet, each with its reproduction: a failure that matches one is still a
// failure (the soak's exit code says so), but the summary names the bug, and test/soak.test.ts reports it as a TODO
// instead of failing the suite for it. Remove an entry once its bug is fixed (its reproduction then passes).
import type { Kind } from './proto.js';

export interface KnownBug {
  id: string;
  /** The reproduction. */
  test: string;
  summary: string;
  /** Whether a failure (kind, scenario, message) is this bug. */
  matches(kind: Kind, scenario: string, message: string): boolean;
}

export const KNOWN_BUGS: readonly KnownBug[] = [
  {
    id: 'splice-half-close',
    test: 'test/splice-after-half-close.test.ts',
    summary: 'io_uring spliced sendFile fails with EIO once the peer has half-closed (the POLLOUT poll completes with POLLRDHUP, SpliceOut gets EAGAIN, 64 idle rounds): megapipe-http truncates the response and closes',
    // a static file (not /dyn, not /echo) cut short in the half-close scenario
    matches: (kind, scenario, message) => kind === 'http' && scenario === 'half-close' && /^http GET \/(?!dyn\/)\S+( bytes=\d+-\d+)?: EOF after \d+ of \d+ bytes$/.test(message),
  },
];
