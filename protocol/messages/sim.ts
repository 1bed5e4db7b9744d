/**
 * Simulator application messages (layer 'sim'): not part of hyper_dmabuf,
 * but what the programs running in two VMs say to each other about buffers
 * they already share, routed by the backend like any domain-to-domain
 * message. The launcher's scenarios and benchmarks use them to hand frames
 * between a render VM and a compositor VM; no pixel ever travels in them.
 */
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
