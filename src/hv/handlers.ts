/**
 * Handlers of the requests the backend itself answers (route 'hv'), by
 * declaration: a type revised in a later protocol version (v2's packed
 * grant batches) has one handler per revision. Each returns the response body or throws a ProtocolError; the
 * session has already checked authentication, version, source and caller.
 */
import { ProtocolError, type MessageDecl, type RequestDecl, type RequestOf } from '../../protocol/index.ts';
import { DOMAIN_CREATE, DOMAIN_DESTROY, HV_STATS, HV_STATS_V2 } from '../../protocol/messages/control.ts';
import {
  EVTCHN_ALLOC_UNBOUND, EVTCHN_BIND_INTERDOMAIN, EVTCHN_CLOSE, EVTCHN_SEND, EVTCHN_STATUS,
} from '../../protocol/messages/evtchn.ts';
import {
  GNTTAB_COPY, GNTTAB_COPY_V2, GNTTAB_MAP_DIRECTORY, GNTTAB_MAP_GRANT_REF, GNTTAB_MAP_GRANT_REF_V2, GNTTAB_QUERY_SIZE,
  GNTTAB_SETUP_TABLE, GNTTAB_UNMAP_GRANT_REF, GNTTAB_UNMAP_GRANT_REF_V2, HV_GRANT_STATS,
} from '../../protocol/messages/grant.ts';
import { PING } from '../../protocol/messages/session.ts';
import type { HvContext } from './context.ts';
import type { Domain } from './domain.ts';
import { killDomain } from './domain-death.ts';
import { createDomain } from './domain-lifecycle.ts';
import * as evtchn from './evtchn-ops.ts';
import { copyBatch } from './grant-copy.ts';
import { mapDirectory } from './grant-directory.ts';
import { mapGrantBatch, mapGrantBatchV2, unmapGrantBatch, unmapGrantBatchV2 } from './grant-map.ts';
import { collectStats, statsV1 } from './stats.ts';

/** A handler: the session's domain (undefined for the control domain) and the validated body. */
type Handler = (ctx: HvContext, caller: Domain | undefined, body: Record<string, unknown>) =>
  Record<string, unknown> | Promise<Record<string, unknown>>;

const table = new Map<MessageDecl, Handler>();

/** Registers the handler of a guest request: it runs with the caller's Domain. */
function guest<D extends RequestDecl>(decl: D, fn: (ctx: HvContext, caller: Domain, body: RequestOf<D>) => Record<string, unknown> | Promise<Record<string, unknown>>): void {
  table.set(decl, (ctx, caller, body) => {
    if (!caller) throw new ProtocolError('ERR_NOT_PERMITTED', `${decl.type} is a guest operation; the control domain has no grant table or ports`);
    return fn(ctx, caller, body as RequestOf<D>);
  });
}

/** Registers the handler of a control or any-caller request. */
function other<D extends RequestDecl>(decl: D, fn: (ctx: HvContext, body: RequestOf<D>) => Record<string, unknown> | Promise<Record<string, unknown>>): void {
  table.set(decl, (ctx, _caller, body) => fn(ctx, body as RequestOf<D>));
}

other(PING, (_ctx, body) => ({ nonce: body.nonce }));

guest(GNTTAB_SETUP_TABLE, (_ctx, caller, body) => {
  if (body.nrFrames > caller.maxGrantFrames) {
    throw new ProtocolError('ERR_LIMIT', `${body.nrFrames} frames exceed the domain's limit of ${caller.maxGrantFrames}`, 'body.nrFrames');
  }
  caller.setFrames(body.nrFrames);
  return { nrFrames: caller.nrFrames, maxFrames: caller.maxGrantFrames };
});
guest(GNTTAB_QUERY_SIZE, (_ctx, caller) => ({ nrFrames: caller.nrFrames, maxFrames: caller.maxGrantFrames }));
guest(GNTTAB_MAP_GRANT_REF, (ctx, caller, body) => mapGrantBatch(ctx, caller, body));
guest(GNTTAB_UNMAP_GRANT_REF, (ctx, caller, body) => unmapGrantBatch(ctx, caller, body));
guest(GNTTAB_COPY, (ctx, caller, body) => copyBatch(ctx, caller, body));
guest(GNTTAB_MAP_GRANT_REF_V2, (ctx, caller, body) => mapGrantBatchV2(ctx, caller, body));
guest(GNTTAB_UNMAP_GRANT_REF_V2, (ctx, caller, body) => unmapGrantBatchV2(ctx, caller, body));
guest(GNTTAB_COPY_V2, async (ctx, caller, body) => ({ status: Int16Array.from((await copyBatch(ctx, caller, body)).status) }));
guest(GNTTAB_MAP_DIRECTORY, (ctx, caller, body) => mapDirectory(ctx, caller, body));
other(HV_GRANT_STATS, (ctx) => ({ ...ctx.grantStats }));

guest(EVTCHN_ALLOC_UNBOUND, (ctx, caller, body) => evtchn.allocUnbound(ctx, caller, body.remoteDom));
guest(EVTCHN_BIND_INTERDOMAIN, (ctx, caller, body) => evtchn.bindInterdomain(ctx, caller, body.remoteDom, body.remotePort));
guest(EVTCHN_SEND, (ctx, caller, body) => evtchn.send(ctx, caller, body.port));
guest(EVTCHN_CLOSE, (ctx, caller, body) => evtchn.close(ctx, caller, body.port));
guest(EVTCHN_STATUS, (_ctx, caller, body) => evtchn.status(caller, body.port));

other(DOMAIN_CREATE, (ctx, body) => createDomain(ctx, body));
other(DOMAIN_DESTROY, async (ctx, body) => {
  const domain = ctx.registry.get(body.domid);
  if (!domain || !domain.alive) throw new ProtocolError('ERR_NO_SUCH_DOMAIN', `domain ${body.domid} does not exist or is already dying`, 'body.domid');
  await killDomain(ctx, domain, 'destroyed');
  return {};
});
other(HV_STATS, (ctx) => statsV1(collectStats(ctx)));
other(HV_STATS_V2, (ctx) => collectStats(ctx));

/** The handler of a backend request declaration (the revision in force in the session's version), if this backend implements it. */
export function hvHandler(decl: MessageDecl): Handler | undefined {
  return table.get(decl);
}
