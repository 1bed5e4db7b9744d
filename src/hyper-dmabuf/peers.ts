/**
 * Per-peer negotiation (DMABUF_PEER_HELLO). Each direction is negotiated
 * separately: before its first EXPORT to a peer, a driver asks that peer,
 * as future importer, which directory format to use and what it accepts.
 * The answer is cached until the peer dies.
 */
import { ProtocolError } from '../../protocol/errors.ts';
import { DMABUF_PEER_HELLO, PEER_LAYERS, type DirFormat } from '../../protocol/messages/dmabuf.ts';
import type { RequestOf, ResponseOf } from '../../protocol/message.ts';
import type { HvClient } from '../transport/hv-client.ts';
import type { ResolvedOptions } from './options.ts';

/** What an importer agreed to. */
export interface PeerTerms {
  /** Default format for EXPORTs to this peer. */
  readonly format: DirFormat;
  /** Every format this peer reads. */
  readonly formats: readonly DirFormat[];
  readonly maxPriv: number;
  readonly maxPages: number;
  /** The optional layers the peer said it answers (SPEC 6), or undefined if it did not say. */
  readonly layers: readonly string[] | undefined;
}

type PeerLayer = (typeof PEER_LAYERS)[number];

/** The layers this domain's client answers, as the wire declares them. */
function ourLayers(hv: HvClient): PeerLayer[] {
  return hv.implementedLayers().filter((l): l is PeerLayer => (PEER_LAYERS as readonly string[]).includes(l));
}

/** Negotiation state of the driver: terms per peer it exports to. */
export class PeerNegotiation {
  private readonly hv: HvClient;
  private readonly options: ResolvedOptions;
  private readonly terms = new Map<number, Promise<PeerTerms>>();

  constructor(hv: HvClient, options: ResolvedOptions) {
    this.hv = hv;
    this.options = options;
  }

  /** Peers with settled or pending terms. */
  get peers(): number[] {
    return [...this.terms.keys()];
  }

  /** The terms for exporting to `dst`, negotiating once (concurrent callers share the round trip). */
  termsFor(dst: number): Promise<PeerTerms> {
    let p = this.terms.get(dst);
    if (!p) {
      p = this.hv.peerRequest(DMABUF_PEER_HELLO, dst, {
        formats: [...this.options.formats], maxPriv: this.options.maxPriv, maxPages: this.options.maxPages, layers: ourLayers(this.hv),
      }).then((r) => ({ format: r.format, formats: r.formats, maxPriv: r.maxPriv, maxPages: r.maxPages, layers: r.layers }));
      this.terms.set(dst, p);
      // A failed negotiation is retried by the next export.
      p.catch(() => { if (this.terms.get(dst) === p) this.terms.delete(dst); });
    }
    return p;
  }

  /** Forgets a peer (it died; a new domain may take its id). */
  forget(dom: number): void {
    this.terms.delete(dom);
  }

  /** The importer side: answers a peer's HELLO with our preferences and limits. */
  answer(body: RequestOf<typeof DMABUF_PEER_HELLO>): ResponseOf<typeof DMABUF_PEER_HELLO> {
    const common = this.options.formats.filter((f) => body.formats.includes(f));
    const format = common[0];
    if (format === undefined) {
      throw new ProtocolError('ERR_NO_COMMON_FORMAT', `offered ${body.formats.join(', ') || 'no format'}; this domain reads ${this.options.formats.join(', ')}`);
    }
    return { format, formats: common, maxPriv: this.options.maxPriv, maxPages: this.options.maxPages, layers: ourLayers(this.hv) };
  }
}
