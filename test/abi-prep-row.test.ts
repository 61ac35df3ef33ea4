// The row → SQE mapping of native/ring.c (prep_row), pinned: what each request row of src/uring becomes, read back
// from the SQE itself (the addon's channelPrepRow preps a row on a real channel without submitting it). Behaviour
// tests cover these flags only indirectly — a receive that lost IOSQE_BUFFER_SELECT fails loudly, but a send that
// lost MSG_WAITALL behind a link, or a receive armed multishot where single-shot was meant, still passes an echo.
// Opcode and flag values are the kernel's uapi (include/uapi/linux/io_uring.h, stable ABI), written out here.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createChannel } from '../src/index.js';
import { native, type NativeSqe } from '../src/native.js';
import { Op, RowFlag } from '../src/uring/abi.js';
import type { UringChannel } from '../src/uring/channel.js';
import { uringSkip } from './helpers.js';

const IORING_OP = { NOP: 0, ACCEPT: 13, ASYNC_CANCEL: 14, CLOSE: 19, SEND: 26, RECV: 27, SHUTDOWN: 34 } as const;
const IOSQE = { FIXED_FILE: 1, IO_LINK: 4, IO_HARDLINK: 8, BUFFER_SELECT: 32 } as const;
const IORING_RECV_MULTISHOT = 2, IORING_ACCEPT_MULTISHOT = 1, IORING_FILE_INDEX_ALLOC = 0xffffffff;
const ASYNC_CANCEL = { ALL: 1, FD: 2, FD_FIXED: 8 } as const;
const MSG = { WAITALL: 0x100, NOSIGNAL: 0x4000, MORE: 0x8000 } as const;
const SOCK = { NONBLOCK: 0o4000, CLOEXEC: 0o2000000 } as const;
const EINVAL = -22;

describe('the row → SQE mapping (native/ring.c prep_row)', { skip: uringSkip }, () => {
  const ch = uringSkip ? undefined : createChannel({ backend: 'uring' }) as unknown as UringChannel;
  after(() => ch?.close());
  /** The SQE of one row: op, fd, flags, user_data (lo, hi), operands a, b, c. */
  const prep = (op: number, fd: number, flags: number, a: number, b: number, c: number, lo = 7, hi = 0x0300_0001): NativeSqe | number =>
    native!.channelPrepRow(ch!.nativeHandle, Int32Array.of(op, fd, flags, lo, hi, a, b, c));
  const sqe = (...args: Parameters<typeof prep>): NativeSqe => {
    const s = prep(...args);
    assert.equal(typeof s, 'object', `the row is refused: ${String(s)}`);
    return s as NativeSqe;
  };

  it('a receive: buffer-selected from group 0; single-shot with c = 1, else multishot ending after b bytes', () => {
    const single = sqe(Op.Recv, 12, 0, 4096, 0, 1);
    assert.deepEqual([single.opcode, single.fd, single.len, single.bufGroup, single.flags, single.ioprio],
      [IORING_OP.RECV, 12, 4096, 0, IOSQE.BUFFER_SELECT, 0]);
    const multi = sqe(Op.Recv, 12, 0, 0, 256 * 1024, 0);
    assert.equal(multi.ioprio, IORING_RECV_MULTISHOT);
    assert.equal(multi.fileIndex, 256 * 1024, 'the multishot total in the optlen word (recv_total_cap)');
    const fixed = sqe(Op.Recv, 3, RowFlag.Fixed, 0, 0, 1);
    assert.equal(fixed.flags, IOSQE.BUFFER_SELECT | IOSQE.FIXED_FILE, 'an lwsocket: a direct-descriptor slot');
  });

  it('a send: MSG_NOSIGNAL; MSG_WAITALL only when linked to what follows; MSG_MORE when more follows', () => {
    const plain = sqe(Op.Send, 9, 0, 0, 100, 0);
    assert.deepEqual([plain.opcode, plain.fd, plain.len, plain.opFlags, plain.flags], [IORING_OP.SEND, 9, 100, MSG.NOSIGNAL, 0]);
    const linked = sqe(Op.Send, 9, RowFlag.Link, 0, 100, 0);
    assert.deepEqual([linked.flags, linked.opFlags], [IOSQE.IO_LINK, MSG.NOSIGNAL | MSG.WAITALL]);
    const hard = sqe(Op.Send, 9, RowFlag.Hardlink, 0, 100, 0);
    assert.deepEqual([hard.flags, hard.opFlags], [IOSQE.IO_HARDLINK, MSG.NOSIGNAL | MSG.WAITALL]);
    assert.equal(sqe(Op.Send, 9, RowFlag.More, 0, 100, 0).opFlags, MSG.NOSIGNAL | MSG.MORE);
    assert.equal(prep(Op.Send, 9, 0, 0x7fff_0000, 0x100, 0), EINVAL, 'bytes outside the send arena: refused');
    assert.equal(prep(Op.Send, 9, RowFlag.Ref, 1 << 24, 1, 0), EINVAL, 'a reference slot that does not exist: refused');
  });

  it('an accept: multishot with a & 1; into the direct-descriptor table (allocated slot) with c & 1', () => {
    const direct = sqe(Op.Accept, 5, 0, 1, 0, 1);
    assert.deepEqual([direct.opcode, direct.ioprio, direct.fileIndex, direct.opFlags],
      [IORING_OP.ACCEPT, IORING_ACCEPT_MULTISHOT, IORING_FILE_INDEX_ALLOC, SOCK.NONBLOCK]);
    const regular = sqe(Op.Accept, 5, 0, 0, 0, 0);
    assert.deepEqual([regular.ioprio, regular.fileIndex, regular.opFlags], [0, 0, SOCK.NONBLOCK | SOCK.CLOEXEC]);
  });

  it('a close, a cancel of every request on a descriptor, a shutdown', () => {
    const close = sqe(Op.Close, 4, RowFlag.Fixed, 0, 0, 0);
    assert.deepEqual([close.opcode, close.flags, close.fd, close.fileIndex], [IORING_OP.CLOSE, 0, 0, 5], 'slot 4: file_index 5, not a fixed-file request');
    const cancel = sqe(Op.CancelFd, 4, RowFlag.Fixed, 0, 0, 0);
    assert.deepEqual([cancel.opcode, cancel.flags, cancel.fd, cancel.opFlags],
      [IORING_OP.ASYNC_CANCEL, 0, 4, ASYNC_CANCEL.FD | ASYNC_CANCEL.ALL | ASYNC_CANCEL.FD_FIXED]);
    const shut = sqe(Op.Shutdown, 8, 0, 0, 0, 1);
    assert.deepEqual([shut.opcode, shut.fd, shut.len], [IORING_OP.SHUTDOWN, 8, 1]);
  });

  it('user_data carries the row\'s two words; an unknown op is refused', () => {
    const nop = sqe(Op.Nop, 0, 0, 0, 0, 0, 0x1234_5678, 0x0a00_00ff);
    assert.deepEqual([nop.opcode, nop.userDataLo, nop.userDataHi], [IORING_OP.NOP, 0x1234_5678, 0x0a00_00ff]);
    assert.equal(prep(99, 0, 0, 0, 0, 0), EINVAL);
  });
});
