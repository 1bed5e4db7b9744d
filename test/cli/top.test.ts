/**
 * `hdmabuf top` against a running backend, through an observer connection
 * (SPEC.md 9.6): it shows the domains and their grants changing while it
 * watches, does not disturb the control connection, and refuses to start
 * without a URL and a token.
 */
import { describe, expect, it } from 'vitest';
import { HV_STATS } from '../../protocol/messages/control.ts';
import { startCli } from '../launcher/cli.ts';
import { connectControl, publishRange, startBackend, startGuest } from '../hv/helpers.ts';

describe('hdmabuf top', () => {
  it('shows a running backend\'s domains and grants changing', async () => {
    const hv = await startBackend();
    const control = await connectControl(hv);
    const first = await startGuest(hv, { name: 'render' });
    const top = startCli(['top', '--url', hv.url, '--token', hv.observerToken, '--interval', '100', '--count', '30']);
    // The first screen shows the domain that exists, with no grant.
    await top.line(/^1\s+render\s+running\s+yes\s+0\s+0\s+0\s+0\b/);
    // Another domain arrives and the first grants 5 entries: later screens show both, the change marked.
    const second = await startGuest(hv, { name: 'compositor' });
    publishRange(first.table, 8, 5, second.domid, true);
    await top.line(/^1\s+render\s+running\s+yes\s+5 \(\+5\)/);
    await top.line(/^2\s+compositor\s+running\s+yes\s+0/);
    const { code } = await top.exited;
    expect(code).toBe(0);
    expect(top.stdout).toMatch(/requests in flight \(routed\) 0/);
    // The control connection was never displaced.
    expect((await control.call(HV_STATS, {})).domains.map((d) => d.name)).toEqual(['render', 'compositor']);
  }, 60_000);

  it('needs --url and --token (exit 2), and refuses a wrong token', async () => {
    const noUrl = startCli(['top', '--token', 'x']);
    expect((await noUrl.exited).code).toBe(2);
    expect(noUrl.stderr).toMatch(/--url/);
    const hv = await startBackend();
    const bad = startCli(['top', '--url', hv.url, '--token', 'not-the-token', '--count', '1']);
    expect((await bad.exited).code).not.toBe(0);
    expect(bad.stderr).toMatch(/ERR_BAD_TOKEN|bad token/);
  }, 60_000);
});
