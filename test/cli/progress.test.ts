/**
 * Progress output: counted updates get a percentage, a rate and an ETA;
 * on a TTY they are redrawn in place (one line for every running task),
 * elsewhere they are plain lines; colour only where it belongs (TTY,
 * NO_COLOR, FORCE_COLOR).
 */
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { useColour } from '../../vm-sim/cli/output.ts';
import { progressWriter } from '../../vm-sim/cli/progress.ts';

function sink(tty: boolean): { stream: PassThrough & { isTTY?: boolean; columns?: number }; text: () => string } {
  const stream = Object.assign(new PassThrough(), { isTTY: tty, columns: 200 });
  let text = '';
  stream.on('data', (d: Buffer) => { text += d.toString(); });
  return { stream, text: () => text };
}

describe('progress lines', () => {
  it('are plain lines with rate and ETA when not on a TTY', () => {
    const out = sink(false);
    let t = 0;
    const p = progressWriter(out.stream, {}, () => t);
    p.line('consumer: frames 0/3000');
    t = 1000;
    p.line('consumer: frames 500/3000');
    p.line('#3 consumer: 3000 frames checked');
    t = 6000;
    p.line('consumer: frames 3000/3000');
    expect(out.text().split('\n')).toEqual([
      'consumer: frames 0/3000 (0%)',
      'consumer: frames 500/3000 (16%, 500/s, ETA 5.0 s)',
      '#3 consumer: 3000 frames checked',
      'consumer: frames 3000/3000 (100%, 500/s, 6.0 s)',
      '',
    ]);
    expect(out.text()).not.toMatch(/\x1b/);
  });

  it('are redrawn in place on a TTY, every running task on the one line, other lines above it', () => {
    const out = sink(true);
    let t = 0;
    const p = progressWriter(out.stream, { NO_COLOR: '1' }, () => t);
    p.line('consumer: frames 0/100');
    p.line('producer: moves 0/10');
    t = 2000;
    p.line('consumer: frames 50/100');
    p.line('#4 a step line');
    t = 4000;
    p.line('consumer: frames 100/100');
    p.done();
    const screen = out.text();
    expect(screen).toContain('\r\x1b[K');
    expect(screen).toContain('consumer: frames 50/100 (50%, 25.0/s, ETA 2.0 s)  |  producer: moves 0/10 (0%)');
    // Finished tasks and other lines end with a newline; updates do not.
    expect(screen).toContain('#4 a step line\n');
    expect(screen).toContain('consumer: frames 100/100 (100%, 25.0/s, 4.0 s)\n');
    expect(screen).not.toContain('frames 50/100 (50%, 25.0/s, ETA 2.0 s)\n');
  });

  it('colours only on a TTY, honouring NO_COLOR and FORCE_COLOR', () => {
    const tty = sink(true).stream;
    const pipe = sink(false).stream;
    expect(useColour(tty, {})).toBe(true);
    expect(useColour(pipe, {})).toBe(false);
    expect(useColour(tty, { NO_COLOR: '1' })).toBe(false);
    expect(useColour(tty, { TERM: 'dumb' })).toBe(false);
    expect(useColour(pipe, { FORCE_COLOR: '1' })).toBe(true);
    expect(useColour(tty, { FORCE_COLOR: '0' })).toBe(false);
    const coloured = progressWriter(pipe, { FORCE_COLOR: '1' }).summary(['', 'fences: ok  (9/9 checks passed)', '  leaks 0']);
    expect(coloured[1]).toBe('\x1b[32mfences: ok  (9/9 checks passed)\x1b[39m');
    expect(progressWriter(pipe, {}).summary(['', 'fences: FAILED']).join('\n')).not.toMatch(/\x1b/);
  });
});
