/**
 * `hdmabuf run copies --json`: the copying paths with a workload whose byte
 * count is known in advance. The backend counts, for every domain, the
 * `len` of each GNTTAB_COPY op it carried out and the data of each routed
 * ECHO (request and reply), so the result's "bytes copied" must be exactly
 * rounds * pages * 4096 + echoes * echoBytes * 2, split the same way, with
 * the protocol traffic beside it (larger: frames and headers).
 */
import { describe, expect, it } from 'vitest';
import { expectedCopiedBytes } from '../../vm-sim/scenarios/builtin/copies.ts';
import { failing, pidsOf, runJson, shmFiles, stillRunning } from './cli.ts';

describe('hdmabuf run copies --json', () => {
  it('reports exactly the bytes GNTTAB_COPY and ECHO moved, counted by the backend', async () => {
    const p = { pages: 24, rounds: 3, echoes: 5, echoBytes: 10_000 };
    const { code, result } = await runJson('copies', Object.entries(p).flatMap(([k, v]) => ['--param', `${k}=${v}`]));
    expect(failing(result)).toEqual([]);
    expect(code).toBe(0);
    // 3 * 24 * 4096 = 294,912 by GNTTAB_COPY; 5 * 10,000 * 2 = 100,000 in ECHO payloads.
    expect(expectedCopiedBytes(p)).toEqual({ grantCopyBytes: 294_912, routedBytes: 100_000, bytesCopied: 394_912 });
    expect(result.stats).toMatchObject({ bytesCopied: 394_912, grantCopyBytes: 294_912, routedBytes: 100_000, expectedBytesCopied: 394_912 });
    // Both domains moved bytes: the sink its copies and requests, the source its replies.
    expect(result.stats.copiedByDomain).toEqual({ dom1: 50_000, dom2: 294_912 + 50_000 });
    expect(result.stats.wireBytes).toBeGreaterThan(100_000);
    expect(result.checks.find((c) => c.name === 'the backend counted the 394912 bytes the scenario copied')).toMatchObject({ ok: true });
    expect(result.leaks).toEqual({ busyGrants: 0, mappings: 0, processes: 0, shmFiles: 0 });
    expect(stillRunning(pidsOf(result))).toEqual([]);
    expect(shmFiles(String(result.stats.runTag))).toEqual([]);
  }, 120_000);
});
