/**
 * Simulator application messages (layer 'sim'): not part of hyper_dmabuf,
 * but what the programs running in two VMs say to each other about buffers
 * they already share, routed by the backend like any domain-to-domain
 * message. The launcher's scenarios and benchmarks use them to hand frames
 * between a render VM and a compositor VM; no pixel ever travels in them.
 */
import { MAX_ECHO_BYTES } from '../limits.ts';
import { defineRequest } from '../message.ts';
import { opt, req, t, U32 } from '../schema.ts';
import { HID } from './dmabuf.ts';

/** How much of a frame the receiver checks through its mapping. */
export const FRAME_CHECKS = ['none', 'stamp', 'full'] as const;
/** A frame check mode. */
export type FrameCheck = (typeof FRAME_CHECKS)[number];

/** A producer hands a shared buffer holding a frame to its consumer; the reply hands it back. */
export const SIM_FRAME_HANDOFF = defineRequest({
  type: 'SIM_FRAME_HANDOFF', route: 'peer', caller: 'guest', since: 1, layer: 'sim',
  doc: 'Producer → consumer: the buffer `hid` (exported by the producer to the consumer and imported by it) now holds frame `frame`. The consumer reads the frame through its own mapping of the buffer, as `check` asks, and answers; the answer hands the buffer back to the producer, which may draw into it again. Errors: ERR_UNKNOWN_BUFFER (the consumer has no mapped import of hid), ERR_BAD_ARGUMENT.',
  request: {
    hid: req(HID, 'The buffer, as exported by the sender to the receiver.'),
    frame: req(U32, 'Number of the frame drawn into the buffer.'),
    check: req(t.enum(...FRAME_CHECKS), 'none: take the buffer as is; stamp: check three words of the frame pattern (first, middle, last: constant cost); full: check every pixel.'),
  },
  response: {
    ok: req(t.bool(), 'The buffer held frame `frame` where checked.'),
    checkedBytes: req(U32, 'Bytes read through the mapping.'),
    checkUs: req(U32, 'Microseconds the check took in the consumer.'),
    badOffset: opt(U32, 'When not ok: byte offset of the first word that differed.'),
  },
});

/** The copying design a share is measured against: a frame's bytes sent to the consumer, acknowledged. */
export const SIM_FRAME_COPY = defineRequest({
  type: 'SIM_FRAME_COPY', route: 'peer', caller: 'guest', since: 1, layer: 'sim',
  doc: 'Producer → consumer: the bytes of frame `frame` from byte `offset` on, carried in the message (what a design without shared buffers sends; a frame larger than one message travels as several). The consumer keeps nothing and answers with the count it received. Benchmarks compare a first share with sending the same bytes this way over the same routed path.',
  request: {
    frame: req(U32, 'Number of the frame the bytes belong to.'),
    offset: req(U32, 'Byte offset of `bytes` in the frame.'),
    bytes: req(t.bin(MAX_ECHO_BYTES), 'The bytes.'),
  },
  response: {
    received: req(U32, 'Bytes received (the length of `bytes`).'),
  },
});
