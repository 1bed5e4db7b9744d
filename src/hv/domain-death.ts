/**
 * The domain-death cascade: what the backend does when a guest's connection
 * closes (process exit or crash) or the control domain destroys it.
 *
 *  1. State running/created -> dying. The session is detached from the
 *     domain, so nothing more is accepted from it; on DOMAIN_DESTROY its
 *     connection is closed.
 *  2. Routed requests to it are answered ERR_PEER_GONE; routed requests
 *     from it are forgotten (router.domainGone).
 *  3. Every mapping in its maptrack is released: pins dropped, busy bits
 *     cleared in the granters' tables (XSA-230 rules), so granters can end
 *     access. Done in chunks that yield to the event loop between them, so
 *     a domain dying with a huge maptrack cannot stall everyone else
 *     (XSA-380).
 *  4. Its event-channel ports are closed; interdomain peers' ports return
 *     to unbound.
 *  5. State -> dead; DOMAIN_DIED {domid, reason, mappingsReleased} goes to
 *     every other connected domain.
 *  6. Its files are deleted and its id freed at once if no other domain
 *     maps its pages; otherwise when the last such mapping is unmapped or
 *     its holder dies (reapIfUnused). A granter that died while granters it
 *     mapped were already dead lets those be reaped in step 3.
 */
import { setImmediate as nextTurn } from 'node:timers/promises';
import { DOMAIN_DIED } from '../../protocol/messages/session.ts';
import type { HvContext } from './context.ts';
import type { Domain } from './domain.ts';
import { reapIfUnused } from './domain-lifecycle.ts';
import { closeAllPorts } from './evtchn-ops.ts';
import { releaseGrant } from './grant-pin.ts';

/** Why a domain died, as DOMAIN_DIED says. */
export type DeathReason = 'disconnected' | 'destroyed';

/** Maptrack entries released per event-loop turn during a cascade. */
export const RELEASE_CHUNK = 16_384;

/**
 * Starts (or joins) the death cascade of `domain`; resolves when it is
 * done. Idempotent: a domain dies once, with the first reason given.
 */
export function killDomain(ctx: HvContext, domain: Domain, reason: DeathReason): Promise<void> {
  if (domain.death) return domain.death;
  domain.lifecycle.apply('dies');
  const session = domain.session;
  domain.session = undefined;
  if (session) {
    ctx.registry.detach(domain.domid, session);
    session.detachDomain();
    if (reason === 'destroyed') void session.conn.close(1000, 'domain destroyed');
  }
  ctx.log(`d${domain.domid} dying (${reason})`);
  const death = cascade(ctx, domain, reason)
    .catch((e: unknown) => ctx.log(`d${domain.domid}: death cascade failed: ${(e as Error)?.stack ?? String(e)}`))
    .finally(() => ctx.deaths.delete(death));
  domain.death = death;
  ctx.deaths.add(death);
  return death;
}

async function cascade(ctx: HvContext, domain: Domain, reason: DeathReason): Promise<void> {
  ctx.router.domainGone(domain.domid);
  const mappingsReleased = await releaseMappings(ctx, domain);
  closeAllPorts(ctx, domain);
  domain.lifecycle.apply('cascade-done');
  ctx.log(`d${domain.domid} dead: released ${mappingsReleased} mappings`);
  if (!ctx.closing) {
    for (const s of ctx.registry.connected()) {
      if (s.domid === domain.domid || !s.isOpen) continue;
      try {
        s.conn.notify(DOMAIN_DIED, { domid: domain.domid, reason, mappingsReleased });
      } catch {
        // That connection is closing: it will not miss the news for long.
      }
    }
  }
  reapIfUnused(ctx, domain);
}

/** Step 3: releases every mapping `domain` holds; returns how many. */
async function releaseMappings(ctx: HvContext, domain: Domain): Promise<number> {
  const mt = domain.maptrack;
  const slots = mt.liveSlots();
  const granters = new Set<Domain>();
  for (let i = 0; i < slots.length; i++) {
    if (i > 0 && i % RELEASE_CHUNK === 0) await nextTurn();
    const slot = slots[i]!;
    const granter = ctx.registry.get(mt.granterOf(slot));
    if (granter) {
      releaseGrant(granter, mt.refOf(slot), mt.isWritable(slot));
      granter.foreignPins--;
      granters.add(granter);
    }
    mt.free(slot);
  }
  for (const g of granters) if (g !== domain) reapIfUnused(ctx, g);
  return slots.length;
}
