/**
 * An importer played by hand on a guest without the driver: it registers
 * EXPORTs, can map a buffer's current pages itself, and answers each
 * DMABUF_MOVE_NOTIFY only when the test says (or never), with or without
 * letting go of the old pages first. It is how the tests hold an exporter
 * in the middle of a move, and how they act as a peer that lies.
 */
import type { RequestOf } from '../../protocol/message.ts';
import { DMABUF_EXPORT, DMABUF_MOVE_NOTIFY, DMABUF_PEER_HELLO } from '../../protocol/messages/dmabuf.ts';
import type { ForeignMapping } from '../../src/guest/foreign-mapping.ts';
import { readDirectory } from '../../src/hyper-dmabuf/directory-reader.ts';
import { hidKey, type Hid } from '../../src/hyper-dmabuf/hid.ts';
import type { BareDom } from './world.ts';

/** One MOVE_NOTIFY waiting for the test's decision. */
export interface PendingMove {
  readonly body: RequestOf<typeof DMABUF_MOVE_NOTIFY>;
  /** Answers ok (the old pages may or may not still be mapped: the test decides). */
  answer(): void;
}

/** Where an import lives now, as the last EXPORT or MOVE_NOTIFY said. */
interface Location {
  src: number;
  nents: number;
  dirRef: number;
  format: RequestOf<typeof DMABUF_EXPORT>['dirFormat'];
  readonly: boolean;
}

/** The hand-played importer. */
export class ManualImporter {
  readonly dom: BareDom;
  readonly imports = new Map<string, Location>();
  private readonly pending: PendingMove[] = [];
  private readonly waiters: Array<(m: PendingMove) => void> = [];

  constructor(dom: BareDom) {
    this.dom = dom;
    const hv = dom.kernel.hv;
    hv.handlePeerRequest(DMABUF_PEER_HELLO, (body) => ({ format: body.formats[0]!, formats: body.formats, maxPriv: body.maxPriv, maxPages: body.maxPages }));
    hv.handlePeerRequest(DMABUF_EXPORT, (body, src) => {
      if (body.nents > 0) {
        this.imports.set(hidKey(body.hid), { src, nents: body.nents, dirRef: body.dirRef, format: body.dirFormat, readonly: body.access === 'ro' });
      }
      return {};
    });
    hv.handlePeerRequest(DMABUF_MOVE_NOTIFY, (body) => new Promise((resolve) => {
      const loc = this.imports.get(hidKey(body.hid));
      if (loc) { loc.dirRef = body.dirRef; loc.format = body.dirFormat; }
      const move: PendingMove = { body, answer: () => resolve({ remapped: false }) };
      const w = this.waiters.shift();
      if (w) w(move);
      else this.pending.push(move);
    }));
  }

  /** The next MOVE_NOTIFY received (unanswered). */
  nextMove(): Promise<PendingMove> {
    const m = this.pending.shift();
    if (m) return Promise.resolve(m);
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** Maps the data pages of an import's current location (directory walk and one batched map). */
  async map(hid: Hid): Promise<ForeignMapping> {
    const loc = this.imports.get(hidKey(hid));
    if (!loc) throw new Error('not imported');
    const dir = await readDirectory(this.dom.kernel.mapper, loc.src, loc.format, loc.dirRef, loc.nents);
    return this.dom.kernel.mapper.mapGrants(loc.src, dir.dataRefs, { readonly: loc.readonly });
  }
}
