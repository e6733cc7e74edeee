// eddy nexmark publish: the Nexmark benchmark's events (sdk/nexmark.ts) into a JetStream stream,
// the input of the jobs in jobs/nexmark read from a stream rather than from their generator.
import type { Command } from 'commander';
import { defaultNatsUrl, parseNonNegativeInt, parsePositiveInt } from '../arguments.ts';
import { CliError } from '../errors.ts';
import { formatCount } from '../format.ts';
import { startProgress } from '../progress.ts';
import { connectToNats } from '../source-publisher.ts';
import { publishNexmark } from '../nexmark-publisher.ts';

interface NexmarkPublishCommandOptions {
  nats: string;
  events: number;
  stream: string;
  partitions: number;
  seed: number;
  rate: number;
  window: number;
  frame: number;
}

export function registerNexmark(program: Command): void {
  const nexmark = program.command('nexmark').description('the Nexmark benchmark (jobs/nexmark)');
  nexmark
    .command('publish')
    .description('publish Nexmark events (people, auctions, bids) to a JetStream stream, event n to partition n mod P')
    .requiredOption('--events <n>', 'how many events', parsePositiveInt)
    .option('--nats <url>', 'NATS server URL(s), comma-separated (env EDDY_NATS)', defaultNatsUrl())
    .option('--stream <name>', 'the stream (created with its partitions if missing)', 'nexmark')
    .option('--partitions <n>', 'subject partitions, as the job reading it declares', parsePositiveInt, 4)
    .option('--seed <n>', 'seeds the events: the same seed gives the same events', parseNonNegativeInt, 0)
    .option('--rate <n>', 'events per second of event time', parsePositiveInt, 10_000)
    .option('--window <n>', 'publishes awaiting acknowledgement at most', parsePositiveInt, 4000)
    .option('--frame <n>', 'events per message at most: above 1, frames (README, "Framed ingest")', parsePositiveInt, 1)
    .action(async (options: NexmarkPublishCommandOptions) => {
      const nc = await connectToNats(options.nats, 'eddy-nexmark');
      const progress = startProgress(`publishing to ${options.stream}`, options.events, 'events');
      try {
        const result = await publishNexmark(nc, { ...options, frameRecords: options.frame, onProgress: (n) => progress.update(n) });
        progress.stop();
        const seconds = result.elapsedMs / 1000;
        console.log(`published ${formatCount(result.published)} Nexmark events (${formatCount(Math.round(result.bytes / result.published))} B each on average) to ${options.stream} in ${seconds.toFixed(2)} s`);
      } catch (e) {
        progress.stop();
        throw new CliError(`nexmark publish failed: ${(e as Error).message}`, { cause: e });
      } finally {
        await nc.close();
      }
    });
}
