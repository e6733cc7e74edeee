// Waiting for "a checkpoint later": exactly-once output is published when a checkpoint completes,
// so two more completed checkpoints mean that anything emitted twice would be there by now. An
// idle job (nothing read, emitted or dead-lettered since its latest checkpoint) takes no periodic
// checkpoints (coordinator/checkpoint-idle.ts): everything it did is in the latest one already.
import type { EddyClient } from '../../cli/client.ts';
import { waitFor } from './wait-for.ts';

/** Idle must hold this long (three heartbeats and more) with no new checkpoint to count. */
const IDLE_FOR_MS = 1_500;

/** Resolves once `more` checkpoints completed after the call, or the job stayed idle for IDLE_FOR_MS. */
export async function checkpointsOrIdle(client: EddyClient, job: string, options: { more?: number; timeoutMs?: number } = {}): Promise<void> {
  const more = options.more ?? 2;
  const start = Number((await client.getJob(job)).checkpoints?.latestId ?? 0);
  let idleSince: { atMs: number; latestId: number } | undefined;
  await waitFor(
    async () => {
      const c = (await client.getJob(job)).checkpoints;
      const latestId = Number(c?.latestId ?? 0);
      if (latestId >= start + more) return true;
      if (c?.idle !== true || Number(c.inFlightId ?? 0) !== 0) {
        idleSince = undefined;
        return false;
      }
      if (idleSince === undefined || idleSince.latestId !== latestId) idleSince = { atMs: Date.now(), latestId };
      return Date.now() - idleSince.atMs >= IDLE_FOR_MS;
    },
    { timeoutMs: options.timeoutMs ?? 30_000, what: `${more} more checkpoints of ${job}, or the job idle with everything it did in its latest checkpoint` },
  );
}
