/** A guest domain, at the backend (SPEC.md 9.1). */
import { defineMachine, type ValueOf } from '../state-machine.ts';

/** Domain states. */
export const DomainState = {
  /** Its files exist and its token is issued; it receives nothing until HELLO. */
  Created: 'created',
  /** Exactly one live connection speaks for it. */
  Running: 'running',
  /** The death cascade (SPEC.md 9.2) is in progress. */
  Dying: 'dying',
  /** The cascade is done; its files and id remain while another domain maps its pages, then it is removed (forgotten). */
  Dead: 'dead',
} as const;
/** A domain state. */
export type DomainState = ValueOf<typeof DomainState>;

/** Events of a domain. */
export type DomainEvent = 'hello' | 'dies' | 'cascade-done';

const { Created, Running, Dying, Dead } = DomainState;

/** A guest domain, at the backend (SPEC.md 9.1). */
export const DomainMachine = defineMachine<DomainState, DomainEvent>({
  id: 'domain',
  title: 'A guest domain, at the backend',
  section: '9.1',
  initial: Created,
  states: {
    [Created]: 'DOMAIN_CREATE done: its files exist and its token is issued; it may be mapped from (its grants are valid once written) and named by event-channel operations, but receives nothing until HELLO',
    [Running]: 'exactly one live connection speaks for it',
    [Dying]: 'the cascade (9.2) is in progress; no longer a valid granter (GNTST_bad_domain), port peer (ERR_NO_SUCH_DOMAIN) or destination',
    [Dead]: 'the cascade is done; its files and id remain until no other domain maps any of its pages (9.3), then it is removed: its files deleted, its id free; HV_STATS lists it until then',
  },
  events: {
    hello: 'HELLO with its token succeeded',
    dies: 'its connection closed, or DOMAIN_DESTROY: the cascade (9.2) starts',
    'cascade-done': 'the cascade is done; DOMAIN_DIED is sent',
  },
  transitions: [
    { from: [Created], event: 'hello', to: Running },
    { from: [Created, Running], event: 'dies', to: Dying },
    { from: [Dying], event: 'cascade-done', to: Dead },
  ],
});
