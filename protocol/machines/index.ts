/** Every declared state machine, in the order SPEC.md presents them. */
import type { StateMachine } from '../state-machine.ts';
import { ExportMachine, ExportMoveMachine } from './export.ts';
import { BufferImportMachine, ForeignMappingMachine, ImportMapMachine } from './import.ts';
import { MoveGateMachine } from './move-gate.ts';
import { RelocationMachine } from './relocation.ts';
import { DomainMachine } from './domain.ts';
import { FenceMachine, FenceShareMachine, TimelineImportMachine, TimelineMachine } from './fence.ts';
import { ResvMachine } from './resv.ts';
import { ConnectionMachine, SessionMachine } from './session.ts';

/** Every machine; SPEC.md draws each in its `machine_<id>` generated block. */
export const MACHINES: ReadonlyArray<StateMachine<string, string>> = [
  ConnectionMachine, SessionMachine, DomainMachine, ExportMachine, BufferImportMachine, ExportMoveMachine, ImportMapMachine, ForeignMappingMachine, MoveGateMachine, RelocationMachine,
  FenceMachine, TimelineMachine, FenceShareMachine, TimelineImportMachine, ResvMachine,
] as unknown as ReadonlyArray<StateMachine<string, string>>;
