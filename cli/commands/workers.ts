// eddy workers: the cluster's workers, their heartbeats and what each one owns.
import type { Command } from 'commander';
import { withClient } from '../context.ts';
import { formatAge, formatBytes, formatRanges, table } from '../format.ts';

export function registerWorkers(program: Command): void {
  program
    .command('workers')
    .description('list workers: state, last heartbeat, key groups, local state size, assignment epoch and source splits per job')
    .action(async (_options: object, command: Command) => {
      const workers = await withClient(command, (client) => client.listWorkers());
      if (workers.length === 0) {
        console.log('no workers registered');
        return;
      }
      const now = Date.now();
      const keyGroupCount = (ranges: readonly { start: number; end: number }[]) => ranges.reduce((n, r) => n + r.end - r.start + 1, 0);
      console.log(
        table([
          ['WORKER', 'STATE', 'HEARTBEAT', 'PID', 'HOST', 'KEY GROUPS', 'STATE SIZE', 'EPOCH', 'SPLITS'],
          ...[...workers]
            .sort((a, b) => a.workerId.localeCompare(b.workerId, 'en', { numeric: true }))
            .map((w) => [
              w.workerId,
              w.state,
              `${formatAge(Number(w.lastHeartbeatUnixMs), now)} ago`,
              w.pid ? String(w.pid) : '-',
              w.host || '-',
              w.assignments.map((a) => `${a.jobId}:${formatRanges(a.keyGroups) || '-'} (${keyGroupCount(a.keyGroups)})`).join(' ') || '-',
              formatBytes(Number(w.stateBytes)),
              w.assignments.map((a) => `${a.jobId}:${a.epoch}`).join(' ') || '-',
              w.assignments.map((a) => `${a.jobId}:${a.sourceSplits.join(',') || '-'}`).join(' ') || '-',
            ]),
        ]),
      );
    });
}
