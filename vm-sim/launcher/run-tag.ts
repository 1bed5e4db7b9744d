/** Run tags: the prefix of every shared-memory file of one run, so that a leak check can find them. */
import { randomBytes } from 'node:crypto';

/** Tags are file-name prefixes: the backend accepts this alphabet. */
export const RUN_TAG_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;

/** A fresh tag: hdmabuf-<launcher pid>-<8 hex>. */
export function newRunTag(): string {
  return `hdmabuf-${process.pid}-${randomBytes(4).toString('hex')}`;
}

/** Checks a tag given on the command line. */
export function checkRunTag(tag: string): string {
  if (!RUN_TAG_PATTERN.test(tag)) throw new RangeError(`run tag ${JSON.stringify(tag)} must match ${RUN_TAG_PATTERN}`);
  return tag;
}
