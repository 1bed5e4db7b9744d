/** A system heap over a fresh guest-RAM file in /dev/shm, for tests that need no backend. */
import { closeSync, ftruncateSync, openSync, unlinkSync } from 'node:fs';
import { SystemHeap } from '../../src/dmabuf/system-heap.ts';
import { GuestRam } from '../../src/guest/guest-ram.ts';
import { PageAllocator } from '../../src/guest/page-allocator.ts';

/** The parts a heap test uses, and how to remove them. */
export interface HeapFixture {
  path: string;
  ram: GuestRam;
  allocator: PageAllocator;
  heap: SystemHeap;
  /** Unmaps the RAM and deletes its file. */
  close(): void;
}

/** Creates a RAM file of `memPages` pages (zero-filled), maps it, and builds an allocator and a heap over it. */
export function openHeapFixture(name: string, memPages: number): HeapFixture {
  const path = `/dev/shm/hdmabuf-${name}-test-${process.pid}-${Date.now()}`;
  const fd = openSync(path, 'w+', 0o600);
  ftruncateSync(fd, memPages * 4096);
  closeSync(fd);
  const ram = GuestRam.open(path, memPages);
  const allocator = new PageAllocator(memPages, ram);
  const heap = new SystemHeap({ domid: 1, ram, allocator });
  return {
    path, ram, allocator, heap,
    close: () => {
      ram.close();
      unlinkSync(path);
    },
  };
}
