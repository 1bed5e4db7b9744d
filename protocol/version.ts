/**
 * Protocol versions and their negotiation.
 *
 * The envelope layout and HELLO are the same in every version, so that two
 * implementations can always agree on a version or on why they cannot.
 */

/** Oldest protocol version this implementation speaks. */
export const MIN_VERSION = 1;
/** Newest protocol version this implementation speaks. */
export const MAX_VERSION = 2;

/** An inclusive range of versions. */
export interface VersionRange { readonly min: number; readonly max: number }

/**
 * Picks the highest version in both ranges, or null when they do not overlap
 * (or the offer is inverted).
 */
export function negotiateVersion(offer: VersionRange, supported: VersionRange = { min: MIN_VERSION, max: MAX_VERSION }): number | null {
  if (offer.min > offer.max) return null;
  const chosen = Math.min(offer.max, supported.max);
  return chosen >= Math.max(offer.min, supported.min) ? chosen : null;
}
