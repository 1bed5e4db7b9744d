/**
 * What the cross-VM fence layer needs of its guest kernel. A booted
 * GuestKernel satisfies it; naming the parts keeps the dependencies explicit.
 */
import type { GuestKernel } from '../guest/kernel.ts';

/** The guest kernel as the fence layer sees it. */
export type FenceKernel = Pick<GuestKernel, 'domid' | 'hv' | 'ram' | 'allocator' | 'grants' | 'mapper' | 'evtchn' | 'on' | 'off'>;

/** True for the errors a request gets when its peer or the backend connection went away. */
export function isPeerGone(e: unknown): boolean {
  const code = (e as { code?: unknown } | null)?.code;
  return code === 'ERR_PEER_GONE' || code === 'ERR_NO_SUCH_DOMAIN' || code === 'ERR_CLOSED';
}
