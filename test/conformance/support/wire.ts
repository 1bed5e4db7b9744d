/** The raw protocol client lives with the `hdmabuf conformance` command, which uses it too. */
export * from '../../../vm-sim/conformance/wire.ts';
