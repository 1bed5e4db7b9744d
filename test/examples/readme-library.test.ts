/**
 * The library example from README.md ("Using it as a library"), run as a
 * test so that the README cannot drift from the API.
 */
import { readdirSync } from 'node:fs';
import { expect, it } from 'vitest';
import { Backend } from '../../src/hv/backend.ts';
import { GuestKernel } from '../../src/guest/kernel.ts';
import { HyperDmabuf } from '../../src/hyper-dmabuf/driver.ts';

it('runs the README example: a backend and two domains in one process share a buffer', async () => {
  // --- README example starts ---
  const hv = await Backend.start();
  const boot = async (name: string) => {
    const d = await hv.createDomain({ name, memPages: 8192 }); // 32 MiB of guest RAM
    const kernel = await GuestKernel.boot({ url: hv.url, ...d, memPages: 8192 });
    return { kernel, driver: HyperDmabuf.load(kernel) };
  };
  const render = await boot('render');
  const compositor = await boot('compositor');

  // The render domain allocates a framebuffer in its own RAM, draws, and exports it.
  const fb = render.driver.heap.alloc(1920 * 1080 * 4);
  const pixels = await fb.vmap();
  pixels.fill(0x7f);
  const priv = new TextEncoder().encode('1920x1080 AB24');
  const hid = await render.driver.exportRemote(fb, compositor.kernel.domid, { priv });

  // The compositor sees NEW_IMPORT, imports, and reads the render domain's pages in place.
  const event = await compositor.driver.readEvent();
  const fd = await compositor.driver.exportFd(event.hid);
  const view = await fd.vmap();
  console.log(new TextDecoder().decode(event.priv), view[0]); // 1920x1080 AB24 127

  // Release, unexport (the grants end once the importer has let go), shut down.
  await fd.put();
  await render.driver.unexport(hid);
  await render.driver.waitReleased(hid, 5000);
  await fb.vunmap(pixels);
  await fb.put();
  for (const d of [compositor, render]) {
    d.driver.close();
    await d.kernel.shutdown();
  }
  await hv.close();
  // --- README example ends ---

  expect(view.byteLength).toBe(0); // detached when the fd's last user let go
  expect(hid.dom).toBe(render.kernel.domid);
  expect(readdirSync('/dev/shm').filter((f) => f.startsWith(hv.runTag))).toEqual([]);
});
