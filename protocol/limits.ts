/** Bounds that the declarations and the transport share. Each is listed in SPEC.md. */

/** Largest frame (bytes) a receiver accepts; larger frames get ERR_FRAME_TOO_LARGE and the connection closes. */
export const MAX_FRAME_BYTES = 16 * 1024 * 1024;
/** Most entries in one grant map, unmap or copy batch. */
export const MAX_BATCH = 65_536;
/** Highest domain id a guest may have (Xen: DOMID_FIRST_RESERVED - 1). */
export const MAX_DOMID = 0x7fef;
/** Page size in bytes. */
export const PAGE_SIZE = 4096;
/** Longest string field for names. */
export const MAX_NAME = 64;
/** Longest path of a shared-memory file. */
export const MAX_PATH = 256;
/** Longest error message. */
export const MAX_MESSAGE = 1024;
/** Most capabilities named in HELLO. */
export const MAX_CAPS = 32;
/** Largest guest RAM, in pages (16 GiB). */
export const MAX_MEM_PAGES = 4 * 1024 * 1024;
/** Largest payload of an ECHO (benchmark baseline) message. */
export const MAX_ECHO_BYTES = 8 * 1024 * 1024;
/**
 * Largest frame a receiver reads before HELLO has succeeded on the connection (a larger one closes it
 * with 1009). The largest HELLO the declaration allows fits (a test checks it).
 */
export const MAX_HELLO_FRAME_BYTES = 4096;
