/**
 * Creating a domain (DOMAIN_CREATE) and removing a dead one once nothing
 * maps its pages any more.
 */
import { closeSync } from 'node:fs';
import { PAGE_SIZE, ProtocolError, type RequestOf, type ResponseOf } from '../../protocol/index.ts';
import type { DOMAIN_CREATE } from '../../protocol/messages/control.ts';
import type { HvContext } from './context.ts';
import { DomainState } from '../../protocol/machines/domain.ts';
import { Domain } from './domain.ts';
import { newToken } from './domain-registry.ts';

/** A DOMAIN_CREATE request body. */
export type DomainCreateRequest = RequestOf<typeof DOMAIN_CREATE>;
/** A DOMAIN_CREATE response body. */
export type DomainCreated = ResponseOf<typeof DOMAIN_CREATE>;

/**
 * Creates a domain: a zero-filled RAM file of memPages pages and a grant
 * table file of maxGrantFrames frames (both sparse, mode 0600, created
 * exclusively), maps the grant table into the backend, and issues a random
 * token. The domain starts in state `created`; HELLO makes it `running`.
 *
 * Errors: ERR_LIMIT when maxDomains domains exist (dead ones awaiting
 * removal count) or the files cannot be created for lack of space;
 * ERR_BAD_ARGUMENT when the wanted domid is taken.
 */
export function createDomain(ctx: HvContext, req: DomainCreateRequest): DomainCreated {
  if (ctx.closing) throw new ProtocolError('ERR_NOT_PERMITTED', 'the backend is shutting down');
  if (ctx.registry.size >= ctx.opts.maxDomains) {
    throw new ProtocolError('ERR_LIMIT', `at most ${ctx.opts.maxDomains} domains may exist at once`);
  }
  const domid = ctx.registry.allocDomid(req.domid);
  if (domid === undefined) {
    if (req.domid !== undefined) throw new ProtocolError('ERR_BAD_ARGUMENT', `domain ${req.domid} already exists`, 'body.domid');
    throw new ProtocolError('ERR_LIMIT', 'no free domain id');
  }
  const maxGrantFrames = req.maxGrantFrames ?? ctx.opts.defaultMaxGrantFrames;
  const ramPath = ctx.files.path(domid, 'ram');
  const grantTablePath = ctx.files.path(domid, 'gnttab');
  let ramFd = -1;
  let gntFd = -1;
  try {
    ramFd = ctx.files.create(ramPath, req.memPages * PAGE_SIZE);
    gntFd = ctx.files.create(grantTablePath, maxGrantFrames * PAGE_SIZE);
    const domain = new Domain({
      domid, name: req.name, token: newToken(), memPages: req.memPages, maxGrantFrames,
      ramPath, grantTablePath, maxMaptrackEntries: ctx.opts.maxMaptrackEntries,
    }, gntFd);
    ctx.registry.add(domain);
    ctx.log(`d${domid} created: ${JSON.stringify(req.name)}, ${req.memPages} pages, ${maxGrantFrames} grant frames`);
    return { domid, token: domain.token, ramPath, grantTablePath, maxGrantFrames };
  } catch (e) {
    ctx.files.remove(ramPath);
    ctx.files.remove(grantTablePath);
    if (e instanceof ProtocolError) throw e;
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOSPC' || code === 'EFBIG' || code === 'ENOMEM' || code === 'ERR_MAP_LIMIT' || code === 'ERR_MMAP') {
      throw new ProtocolError('ERR_LIMIT', `cannot create the files of domain ${domid}: ${(e as Error).message}`);
    }
    throw e;
  } finally {
    if (ramFd >= 0) closeSync(ramFd);
    if (gntFd >= 0) closeSync(gntFd);
  }
}

/**
 * Removes a dead domain once no maptrack entry anywhere pins one of its
 * grants: unmaps the backend's views of its memory, deletes its files, and
 * frees its id. Until then a dead granter's pages stay valid for the
 * domains that still map them (Xen keeps page references for live
 * mappings; a granter cannot revoke a mapping). Returns true if removed.
 */
export function reapIfUnused(ctx: HvContext, domain: Domain): boolean {
  if (domain.state !== DomainState.Dead || domain.foreignPins > 0) return false;
  if (ctx.registry.get(domain.domid) !== domain) return false;
  ctx.registry.remove(domain.domid);
  domain.unmapAll();
  ctx.files.remove(domain.ramPath);
  ctx.files.remove(domain.grantTablePath);
  ctx.log(`d${domain.domid} removed`);
  return true;
}
