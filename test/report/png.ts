/**
 * Enough of a PNG decoder to tell whether a screenshot shows something: 8-bit
 * RGB or RGBA, not interlaced (what Chromium's Page.captureScreenshot
 * writes). Returns the pixels' statistics, not the pixels.
 */
import { inflateSync } from 'node:zlib';

/** What a picture holds. */
export interface PngStats {
  width: number;
  height: number;
  /** Share of pixels that are not (near) white, 0..1. */
  inked: number;
  /** Distinct colours (capped at 4096). */
  colours: number;
}

/** Decodes and measures a PNG. */
export function pngStats(png: Buffer): PngStats {
  if (png.readUInt32BE(0) !== 0x89504e47) throw new Error('not a PNG');
  let off = 8;
  let width = 0;
  let height = 0;
  let channels = 0;
  const idat: Buffer[] = [];
  while (off < png.length) {
    const len = png.readUInt32BE(off);
    const type = png.toString('latin1', off + 4, off + 8);
    const data = png.subarray(off + 8, off + 8 + len);
    if (type === 'IHDR') {
      width = data.readUInt32BE(0);
      height = data.readUInt32BE(4);
      const depth = data[8];
      const colourType = data[9];
      if (depth !== 8 || (colourType !== 2 && colourType !== 6) || data[12] !== 0) throw new Error(`unsupported PNG (depth ${depth}, colour type ${colourType}, interlace ${data[12]})`);
      channels = colourType === 6 ? 4 : 3;
    } else if (type === 'IDAT') {
      idat.push(data);
    }
    off += 12 + len;
  }
  const raw = inflateSync(Buffer.concat(idat));
  const stride = width * channels;
  let prev = Buffer.alloc(stride);
  let inked = 0;
  const colours = new Set<number>();
  for (let y = 0; y < height; y++) {
    const filter = raw[y * (stride + 1)]!;
    const line = Buffer.from(raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1)));
    for (let i = 0; i < stride; i++) {
      const a = i >= channels ? line[i - channels]! : 0;
      const b = prev[i]!;
      const c = i >= channels ? prev[i - channels]! : 0;
      let add = 0;
      if (filter === 1) add = a;
      else if (filter === 2) add = b;
      else if (filter === 3) add = (a + b) >> 1;
      else if (filter === 4) {
        const p = a + b - c;
        const pa = Math.abs(p - a);
        const pb = Math.abs(p - b);
        const pc = Math.abs(p - c);
        add = pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
      }
      line[i] = (line[i]! + add) & 0xff;
    }
    for (let x = 0; x < width; x++) {
      const r = line[x * channels]!;
      const g = line[x * channels + 1]!;
      const bl = line[x * channels + 2]!;
      if (r < 240 || g < 240 || bl < 240) inked++;
      if (colours.size < 4096) colours.add((r << 16) | (g << 8) | bl);
    }
    prev = line;
  }
  return { width, height, inked: inked / (width * height), colours: colours.size };
}
