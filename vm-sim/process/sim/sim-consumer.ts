/**
 * The compositor's side of a frame handoff: SIM_FRAME_HANDOFF names an
 * import of this VM that has an fd open (dmabuf.exportFd); the frame is
 * checked through that fd's view, i.e. the exporter's own pages mapped here
 * (no copy), and the reply hands the buffer back.
 */
import { ProtocolError } from '../../../protocol/errors.ts';
import type { RequestOf, ResponseOf } from '../../../protocol/message.ts';
import type { SIM_FRAME_HANDOFF } from '../../../protocol/messages/sim.ts';
import { formatHid, hidKey } from '../../../src/hyper-dmabuf/index.ts';
import { nowUs } from '../../trace/clock.ts';
import { childTrace } from '../../trace/child-trace.ts';
import { checkStampedFrame, wordsOf } from '../../../workloads/frame-pattern.ts';
import { fdOfHid, viewOf, type SimState } from './sim-state.ts';

/** Answers one handoff. */
export async function handleHandoff(s: SimState, body: RequestOf<typeof SIM_FRAME_HANDOFF>, src: number): Promise<ResponseOf<typeof SIM_FRAME_HANDOFF>> {
  if (body.hid.dom !== src) throw new ProtocolError('ERR_ID_DOMAIN_MISMATCH', `handoff from dom${src} names a buffer of dom${body.hid.dom}`);
  const held = fdOfHid(s, hidKey(body.hid));
  if (!held) throw new ProtocolError('ERR_UNKNOWN_BUFFER', `no open fd on an import of ${formatHid(body.hid)} here`);
  const view = held.view ?? await viewOf(held);
  // A view detached by a release is a refusal, never a crash.
  if (view.byteLength === 0) throw new ProtocolError('ERR_BAD_ARGUMENT', `${formatHid(body.hid)} is no longer mapped`);
  const t0 = nowUs();
  const r = checkStampedFrame(wordsOf(view), body.frame, body.check);
  const checkUs = Math.round(nowUs() - t0);
  const c = s.consumer;
  c.handoffs++;
  c.checkedBytes += r.checkedBytes;
  if (r.ok) c.checkedOk++; else c.checkedBad++;
  if (body.check === 'full') childTrace()?.span(`check frame ${body.frame}`, 'sim', t0, { bytes: r.checkedBytes, ok: r.ok });
  return { ok: r.ok, checkedBytes: Math.min(r.checkedBytes, 0xffffffff), checkUs: Math.min(checkUs, 0xffffffff), ...(r.ok ? {} : { badOffset: r.badOffset }) };
}
