/**
 * Parses a diagram with the real Mermaid parser (the `mermaid` package's
 * parse API, which runs under Node without a browser): resolves when
 * Mermaid accepts the text, rejects with its parse error otherwise.
 */
interface MermaidModule {
  default: { parse(text: string): Promise<{ diagramType: string } | false> };
}

/** The diagram type Mermaid recognised ("sequence"). */
export async function mermaidParse(text: string): Promise<string> {
  const mermaid = ((await import('mermaid')) as unknown as MermaidModule).default;
  const r = await mermaid.parse(text);
  if (!r) throw new Error('mermaid.parse returned false');
  return r.diagramType;
}
