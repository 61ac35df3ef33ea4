// Backend selection: on a machine whose kernel offers io_uring, the io_uring backend is what runs — the addon is
// loaded, a ring is set up, and createChannel() with the default 'auto' returns an io_uring channel without a warning.
// (The other io_uring suites fail too when it is missing, through test/helpers.ts; this file says so by name.)
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createChannel, uringAvailability } from '../src/index.js';
import { nativeLoadError } from '../src/native.js';
import { uringExpectation } from './uring-expected.js';

const expectation = uringExpectation();

describe('backend selection', () => {
  it(`the io_uring backend runs where the kernel has it (${expectation.why})`, { skip: expectation.expected ? false : `io_uring not expected here: ${expectation.why}` }, () => {
    assert.equal(nativeLoadError, null, 'the native addon loaded');
    const a = uringAvailability();
    assert.ok(a.ok, `io_uring available: ${a.reason}`);
    const warnings: string[] = [];
    const onWarning = (w: Error) => warnings.push(w.message);
    process.on('warning', onWarning);
    const ch = createChannel();
    try {
      assert.equal(ch.backend, 'uring');
      assert.equal(ch.features.singleIssuer, true);
    } finally { ch.close(); process.off('warning', onWarning); }
    assert.deepEqual(warnings, []);
  });
});
