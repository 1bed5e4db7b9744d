/**
 * Grant-table ABI, with Xen's names and values (xen/include/public/grant_table.h).
 *
 * Entry layout (grant table v1, 8 bytes, little-endian):
 *
 *   byte 0       2       4               8
 *        +-------+-------+---------------+
 *        | flags | domid |     frame     |
 *        +-------+-------+---------------+
 *
 * The guest writes domid, frame and the flags other than GTF_reading and
 * GTF_writing; the backend writes only GTF_reading and GTF_writing.
 * flags and domid form one 32-bit word, so both sides update them together
 * with a single atomic compare-exchange.
 */

/** Bytes per grant entry (v1). */
export const GRANT_ENTRY_BYTES = 8;
/** Entries per 4 KiB grant-table frame. */
export const ENTRIES_PER_FRAME = 512;
/** Xen's default limit on grant-table frames per domain. */
export const DEFAULT_MAX_GRANT_FRAMES = 64;
/** Grant references below this are reserved (Xen keeps ref 0 for the console; displif uses 0 as "none"). */
export const GNTTAB_NR_RESERVED_ENTRIES = 1;
/** Reference that means "no reference". */
export const INVALID_GRANT_REF = 0xffffffff;
/** Handle returned for an entry that failed to map. */
export const INVALID_GRANT_HANDLE = 0xffffffff;
/** Highest value of each pin counter; a map that would pass it fails (Xen's 0x80 guard). */
export const MAX_PIN_COUNT = 127;

/** Grant entry type and flag bits (GTF_*). */
export const GTF = {
  invalid: 0,
  permit_access: 1,
  accept_transfer: 2,
  transitive: 3,
  type_mask: 3,
  readonly: 1 << 2,
  reading: 1 << 3,
  writing: 1 << 4,
  PWT: 1 << 5,
  PCD: 1 << 6,
  PAT: 1 << 7,
  sub_page: 1 << 8,
} as const;

/** Map flags (GNTMAP_*). */
export const GNTMAP = {
  device_map: 1 << 0,
  host_map: 1 << 1,
  readonly: 1 << 2,
  application_map: 1 << 3,
  contains_pte: 1 << 4,
  can_fail: 1 << 5,
} as const;

/** Copy flags (GNTCOPY_*). */
export const GNTCOPY = {
  source_gref: 1 << 0,
  dest_gref: 1 << 1,
  can_fail: 1 << 2,
} as const;

/** Per-entry status codes (GNTST_*), Xen's values. */
export const GNTST = {
  okay: 0,
  general_error: -1,
  bad_domain: -2,
  bad_gntref: -3,
  bad_handle: -4,
  bad_virt_addr: -5,
  bad_dev_addr: -6,
  no_device_space: -7,
  permission_denied: -8,
  bad_page: -9,
  bad_copy_arg: -10,
  address_too_big: -11,
  eagain: -12,
  no_space: -13,
} as const;

/** A GNTST value. */
export type GrantStatus = (typeof GNTST)[keyof typeof GNTST];

/** Xen's message for each status (GNTTABOP_error_msgs). */
export const GNTST_MESSAGE: Readonly<Record<number, string>> = {
  0: 'okay',
  [-1]: 'undefined error',
  [-2]: 'unrecognised domain id',
  [-3]: 'invalid grant reference',
  [-4]: 'invalid mapping handle',
  [-5]: 'invalid virtual address',
  [-6]: 'invalid device address',
  [-7]: 'no spare translation slot in the I/O MMU',
  [-8]: 'permission denied',
  [-9]: 'bad page',
  [-10]: 'copy arguments cross page boundary',
  [-11]: 'page address size too large',
  [-12]: 'operation not done; try again',
  [-13]: 'out of space',
};

/** The name of a GNTST value, e.g. "GNTST_permission_denied". */
export function gntstName(status: number): string {
  for (const [name, value] of Object.entries(GNTST)) if (value === status) return `GNTST_${name}`;
  return `GNTST_${status}`;
}
