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

// (splice-half-close — a spliced sendFile failed with EIO once the peer half-closed — was fixed: its reproduction,
// test/splice-after-half-close.test.ts, passes; the soak now counts such a failure as an ordinary one.)
export const KNOWN_BUGS: readonly KnownBug[] = [];
