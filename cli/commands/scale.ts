// eddy scale N: adds or removes workers of the local cluster that `eddy up` runs with the same
// --data dir, through its control socket (cli/up-control.ts). New workers are ready when it
// returns; removed ones got SIGTERM (they hand their key groups over and exit) and are gone.
import type { Command } from 'commander';
import { parseNonNegativeInt } from '../arguments.ts';
import { requestControl } from '../up-control.ts';

interface ScaleCommandOptions {
  data: string;
}

export function registerScale(program: Command): void {
  program
    .command('scale')
    .description('add or remove workers of a running `eddy up` cluster until <workers> run')
    .argument('<workers>', 'how many workers should run', parseNonNegativeInt)
    .option('--data <dir>', 'the data dir of the `eddy up` to scale', './data')
    .action(async (workers: number, options: ScaleCommandOptions) => {
      const result = await requestControl(options.data, { op: 'scale', workers });
      if (result.added.length > 0) console.log(`started ${result.added.join(', ')}`);
      if (result.removed.length > 0) console.log(`stopped ${result.removed.join(', ')}`);
      if (result.added.length === 0 && result.removed.length === 0) console.log('nothing to do');
      console.log(`${result.workers.length} worker${result.workers.length === 1 ? '' : 's'} running${result.workers.length > 0 ? `: ${result.workers.join(', ')}` : ''}`);
    });
}
