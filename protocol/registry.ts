/**
 * Every declared message, by type name. Layers add their declaration modules
 * here, and nowhere else, so the codec and SPEC.md see one table.
 */
import type { MessageDecl } from './message.ts';
import * as control from './messages/control.ts';
import * as dmabuf from './messages/dmabuf.ts';
import * as dmabufSync from './messages/dmabuf-sync.ts';
import * as evtchn from './messages/evtchn.ts';
import * as fence from './messages/fence.ts';
import * as grant from './messages/grant.ts';
import * as session from './messages/session.ts';
import * as sim from './messages/sim.ts';

/** Declaration modules, in the order SPEC.md presents them. */
export const declarationModules: ReadonlyArray<Readonly<Record<string, unknown>>> = [session, grant, evtchn, control, dmabuf, fence, dmabufSync, sim];

/**
 * Every declaration, by type: a type has one declaration per protocol
 * version that changed it (a revision, e.g. v2's packed grant batches), in
 * increasing `since`. A revision is in force from its `since` until the next
 * revision of the same type.
 */
function collect(): ReadonlyMap<string, readonly MessageDecl[]> {
  const all = new Map<string, MessageDecl[]>();
  for (const mod of declarationModules) {
    // Sorted by type so the order does not depend on how a loader builds module namespaces.
    const decls = Object.values(mod).filter((v) => typeof v === 'object' && v !== null && 'kind' in v && 'type' in v) as MessageDecl[];
    decls.sort((a, b) => (a.type < b.type ? -1 : a.type > b.type ? 1 : a.since - b.since));
    for (const decl of decls) {
      const list = all.get(decl.type);
      if (!list) {
        all.set(decl.type, [decl]);
        continue;
      }
      if (list.some((d) => d.since === decl.since)) throw new Error(`message type ${decl.type} declared twice for v${decl.since}`);
      if (list[0]!.kind !== decl.kind) throw new Error(`message type ${decl.type}: a revision may not change the kind`);
      list.push(decl);
      list.sort((a, b) => a.since - b.since);
    }
  }
  return all;
}

/** Every declaration of every type, by type, oldest first. */
export const revisions: ReadonlyMap<string, readonly MessageDecl[]> = collect();

/** Every declared message type with its first declaration (the version that introduced it). */
export const messages: ReadonlyMap<string, MessageDecl> = new Map([...revisions].map(([type, list]) => [type, list[0]!]));

/** The declaration of `type` in force in protocol version `version`, if the type exists there. */
export function lookupMessage(type: string, version: number): MessageDecl | undefined {
  const list = revisions.get(type);
  if (!list) return undefined;
  for (let i = list.length - 1; i >= 0; i--) if (list[i]!.since <= version) return list[i];
  return undefined;
}

/** Every type declared in `version`, with the declaration in force there, in registry order. */
export function messagesAt(version: number): ReadonlyMap<string, MessageDecl> {
  const out = new Map<string, MessageDecl>();
  for (const type of revisions.keys()) {
    const decl = lookupMessage(type, version);
    if (decl) out.set(type, decl);
  }
  return out;
}
