/**
 * The private data that describes a framebuffer (the compositor needs it to
 * scan out what a render VM shares): the formats the simulator knows and
 * their 20-byte encoding.
 */

/** What a framebuffer's private data says (the compositor needs it to scan out). */
export interface FramebufferInfo {
  width: number;
  height: number;
  /** Bytes per row. */
  stride: number;
  /** DRM fourcc as text, e.g. "AB24" (DRM_FORMAT_ABGR8888: R, G, B, A bytes in memory = RGBA8888). */
  format: string;
}

/** Named formats and their fourcc and bytes per pixel. */
export const FORMATS: Readonly<Record<string, { fourcc: string; bpp: number }>> = {
  RGBA8888: { fourcc: 'AB24', bpp: 4 },
  BGRA8888: { fourcc: 'AR24', bpp: 4 },
  RGBX8888: { fourcc: 'XB24', bpp: 4 },
};

/** Private data layout: magic "FBv1", width, height, stride (u32 LE), fourcc (4 ASCII bytes): 20 bytes. */
export const FB_PRIV_BYTES = 20;
const FB_MAGIC = 0x31764246; // "FBv1" read as u32 LE

/** Encodes framebuffer info as private data. */
export function encodeFramebufferInfo(info: FramebufferInfo): Uint8Array {
  if (!/^[ -~]{4}$/.test(info.format)) throw Object.assign(new Error(`fourcc ${JSON.stringify(info.format)} must be 4 ASCII characters`), { code: 'ERR_BAD_ARGUMENT' });
  const out = new Uint8Array(FB_PRIV_BYTES);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, FB_MAGIC, true);
  dv.setUint32(4, info.width, true);
  dv.setUint32(8, info.height, true);
  dv.setUint32(12, info.stride, true);
  for (let i = 0; i < 4; i++) out[16 + i] = info.format.charCodeAt(i);
  return out;
}

/** Decodes framebuffer private data; undefined if it is not that layout. */
export function decodeFramebufferInfo(priv: Uint8Array): FramebufferInfo | undefined {
  if (priv.byteLength !== FB_PRIV_BYTES) return undefined;
  const dv = new DataView(priv.buffer, priv.byteOffset, priv.byteLength);
  if (dv.getUint32(0, true) !== FB_MAGIC) return undefined;
  return {
    width: dv.getUint32(4, true), height: dv.getUint32(8, true), stride: dv.getUint32(12, true),
    format: String.fromCharCode(priv[16]!, priv[17]!, priv[18]!, priv[19]!),
  };
}
