// `hdmabuf/launcher` for plain node: the launcher is TypeScript (vm-sim/launcher/api.ts), run through
// tsx's loader scoped to this import (tsImport), so the importing program's own module loading is
// unchanged. Its types are dist/vm-sim/launcher/api.d.ts (tsconfig.build-launcher.json).
import { tsImport } from 'tsx/esm/api';

const api = await tsImport('./api.ts', import.meta.url);

export const {
  runScenario, prepareScenario, loadScenario, builtinScenarios, DEFAULT_SCENARIO,
  summaryLines, exitCodeOf, ScenarioError, defineScenario,
} = api;
