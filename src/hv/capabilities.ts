/** Capabilities this backend offers in HELLO (SPEC.md section 5: version 1 defines `gnttab.v1`). */
export const BACKEND_CAPS: readonly string[] = ['gnttab.v1'];

/** The capabilities both sides support, in the client's order, without duplicates. */
export function commonCaps(offered: readonly string[]): string[] {
  const out: string[] = [];
  for (const c of offered) if (BACKEND_CAPS.includes(c) && !out.includes(c)) out.push(c);
  return out;
}
