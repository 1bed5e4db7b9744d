/**
 * What the driver needs of its guest kernel. A booted GuestKernel satisfies
 * it; naming the parts keeps the driver's dependencies explicit.
 */
import type { HvClient } from '../transport/hv-client.ts';
import type { ForeignMapper } from '../guest/foreign-mapper.ts';
import type { DirectoryHost } from './directory-writer.ts';

/** The guest kernel as the driver sees it. */
export interface DriverHost extends DirectoryHost {
  /** This domain. */
  readonly domid: number;
  /** The connection to the backend (hypercalls, peer messages, DOMAIN_DIED). */
  readonly hv: HvClient;
  /** Maps other domains' grants. */
  readonly mapper: ForeignMapper;
}
