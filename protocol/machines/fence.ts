/** The machines of fences across VMs (SPEC.md 11A.4). */
import { defineMachine, type ValueOf } from '../state-machine.ts';

/** A fence's state (its status is separate: 1, or a negative errno, once signalled). */
export const FenceState = {
  Pending: 'pending',
  Signalled: 'signalled',
} as const;
/** A fence's state. */
export type FenceState = ValueOf<typeof FenceState>;

/** A fence, on the owner's side and the observer's alike (SPEC.md 11A.4). */
export const FenceMachine = defineMachine<FenceState, 'signal'>({
  id: 'fence',
  title: 'A fence, owner side and observer side alike',
  section: '11A.4',
  initial: FenceState.Pending,
  states: {
    pending: 'not signalled; its status reads 0 (an error set meanwhile stays invisible)',
    signalled: 'signalled exactly once, with status 1 or a negative errno; every callback sees that status',
  },
  events: {
    signal: 'an advance past it (status 1, or the owner\'s errno), or forced completion on the observer side: owner closed the timeline (-ENOENT), owner died (-EPIPE), owner unshared or observer shut down (-ECANCELED), page contradicts the protocol (-EPROTO)',
  },
  transitions: [
    { from: ['pending'], event: 'signal', to: 'signalled' },
  ],
});

/** A timeline's state, owner side. */
export const TimelineState = {
  /** Points can be created and signalled. */
  Live: 'live',
  /** Destroyed: every point has signalled; nothing more can happen on it. */
  Closed: 'closed',
} as const;
/** A timeline's state, owner side. */
export type TimelineState = ValueOf<typeof TimelineState>;

/** A shared timeline, owner side (SPEC.md 11A.3). */
export const TimelineMachine = defineMachine<TimelineState, 'destroy'>({
  id: 'timeline',
  title: 'A shared timeline, owner side',
  section: '11A.3',
  initial: TimelineState.Live,
  states: {
    live: 'points can be created and signalled',
    closed: 'destroyed: every point has signalled (pending ones with -ENOENT); nothing more can happen on it',
  },
  events: {
    destroy: 'the owner destroys the timeline (as closing a sw_sync timeline)',
  },
  transitions: [
    { from: ['live'], event: 'destroy', to: 'closed' },
  ],
});

/** One observer's share of one timeline, owner side. */
export const FenceShareState = {
  Offered: 'offered',
  Mapped: 'mapped',
  Closing: 'closing',
  Closed: 'closed',
} as const;
/** One observer's share of one timeline, owner side. */
export type FenceShareState = ValueOf<typeof FenceShareState>;

/** Events of a share. */
export type FenceShareEvent = 'answered' | 'unshare-sent' | 'released';

/** A share of a timeline with one observer, owner side (SPEC.md 11A.4). */
export const FenceShareMachine = defineMachine<FenceShareState, FenceShareEvent>({
  id: 'fence_share',
  title: 'A share of a timeline with one observer, owner side',
  section: '11A.4',
  initial: FenceShareState.Offered,
  states: {
    offered: 'page granted read-only and port allocated; FENCE_TIMELINE_SHARE sent',
    mapped: 'the observer mapped the page and bound the port: references to its points may be sent',
    closing: 'FENCE_TIMELINE_UNSHARE sent, not yet answered',
    closed: 'ports closed, grant ended (deferred while the observer still maps the page), counts dropped',
  },
  events: {
    answered: 'FENCE_TIMELINE_SHARE answered ok',
    'unshare-sent': 'the owner unshares, or destroys the timeline: FENCE_TIMELINE_UNSHARE sent',
    released: 'offered: SHARE refused, not answered, or the observer died; mapped: the observer died or sent FENCE_TIMELINE_DETACHED; closing: UNSHARE answered, not answered in time, or the observer died',
  },
  transitions: [
    { from: ['offered'], event: 'answered', to: 'mapped' },
    { from: ['mapped'], event: 'unshare-sent', to: 'closing' },
    { from: ['offered', 'mapped', 'closing'], event: 'released', to: 'closed' },
  ],
});

/** A timeline imported from its owner, observer side. */
export const TimelineImportState = {
  /** FENCE_TIMELINE_SHARE received: page being mapped, header checked, port bound. */
  SettingUp: 'setting-up',
  /** Page mapped, port bound: points can be imported and signal. */
  Mapped: 'mapped',
  /** Finalised: every point it held has signalled; page and port are being (or have been) released. */
  Closed: 'closed',
} as const;
/** A timeline imported from its owner, observer side. */
export type TimelineImportState = ValueOf<typeof TimelineImportState>;

/** Events of a timeline import. */
export type TimelineImportEvent = 'set-up' | 'torn-down';

/** A timeline imported from its owner, observer side (SPEC.md 11A.4). */
export const TimelineImportMachine = defineMachine<TimelineImportState, TimelineImportEvent>({
  id: 'timeline_import',
  title: 'A timeline imported from its owner, observer side',
  section: '11A.4',
  initial: TimelineImportState.SettingUp,
  states: {
    'setting-up': 'FENCE_TIMELINE_SHARE received: the page is being mapped, its header checked, the port bound',
    mapped: 'page mapped, header ok, port bound: points can be imported and signal',
    closed: 'last check done, pending fences completed, page unmapped, port closed (on shutdown: FENCE_TIMELINE_DETACHED sent); a setup that failed leaves nothing',
  },
  events: {
    'set-up': 'page mapped, header ok, port bound: FENCE_TIMELINE_SHARE answered ok',
    'torn-down': 'setting-up: a map, header or bind failure (the SHARE is refused); mapped: FENCE_TIMELINE_UNSHARE, the owner died, or the observer shut down',
  },
  transitions: [
    { from: ['setting-up'], event: 'set-up', to: 'mapped' },
    { from: ['setting-up', 'mapped'], event: 'torn-down', to: 'closed' },
  ],
});
