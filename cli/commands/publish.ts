// eddy publish <stream> <file.ndjson|->: send records to a job's source stream.
import fs from 'node:fs';
import readline from 'node:readline';
import type { Command } from 'commander';
import { defaultNatsUrl, parsePositiveInt } from '../arguments.ts';
import { CliError } from '../errors.ts';
import { formatCount } from '../format.ts';
import { startProgress } from '../progress.ts';
import { addNatsAuthOptions, natsAuthFrom, type NatsCommandOptions } from '../security-options.ts';
import { connectToNats, publishLines, resolveSourceTarget, type PublishResult } from '../source-publisher.ts';

interface PublishCommandOptions extends NatsCommandOptions {
  nats: string;
  partitions?: number;
  key?: string;
  window: number;
  frame: number;
}

/** Newlines in a file, for the progress bar's total, counted without decoding. */
async function countLines(file: string): Promise<number> {
  let lines = 0;
  let last = 0x0a;
  for await (const chunk of fs.createReadStream(file) as AsyncIterable<Buffer>) {
    for (let i = chunk.indexOf(0x0a); i !== -1; i = chunk.indexOf(0x0a, i + 1)) lines++;
    if (chunk.length > 0) last = chunk[chunk.length - 1]!;
  }
  return last === 0x0a ? lines : lines + 1;
}

export function publishSummary(stream: string, result: PublishResult): string {
  const seconds = result.elapsedMs / 1000;
  const rate = seconds > 0 ? result.published / seconds : 0;
  return `published ${formatCount(result.published)} records to ${stream} in ${seconds.toFixed(2)} s (${formatCount(Math.round(rate))}/s)`;
}

export function registerPublish(program: Command): void {
  const command = program
    .command('publish')
    .description("publish NDJSON records to a source stream, one per line, partitioned by the source's key")
    .argument('<stream>', 'the source stream (the job\'s source name, e.g. indicators)')
    .argument('<file>', 'an NDJSON file, or - for stdin')
    .option('--nats <url>', 'NATS server URL(s), comma-separated (env EDDY_NATS)', defaultNatsUrl())
    .option('--partitions <n>', 'create the stream with this many partitions if it does not exist', parsePositiveInt)
    .option('--key <field>', 'the field records are partitioned by (when creating the stream)')
    .option('--window <n>', 'publishes awaiting acknowledgement at most', parsePositiveInt, 1_000)
    .option('--frame <n>', 'records per message at most: above 1, records go several to a message in frames (README, "Framed ingest"), which jobs read many times faster', parsePositiveInt, 1);
  addNatsAuthOptions(command).action(async (stream: string, file: string, options: PublishCommandOptions) => {
      if (options.key !== undefined && options.partitions === undefined) throw new CliError('--key needs --partitions');
      const fromStdin = file === '-';
      if (!fromStdin) {
        try {
          await fs.promises.access(file);
        } catch {
          throw new CliError(`no such file: ${file}`);
        }
      }
      const nc = await connectToNats(options.nats, 'eddy-publish', natsAuthFrom(options));
      try {
        const create = options.partitions === undefined ? undefined : { partitions: options.partitions, ...(options.key ? { partitionKey: options.key } : {}) };
        const target = await resolveSourceTarget(nc, stream, create);
        const total = fromStdin ? 0 : await countLines(file);
        const input = fromStdin ? process.stdin : fs.createReadStream(file);
        const lines = readline.createInterface({ input, crlfDelay: Infinity });
        const progress = startProgress(`publishing to ${stream}`, total, 'records');
        let result: PublishResult;
        try {
          result = await publishLines(nc, target, lines, { window: options.window, frameRecords: options.frame, onProgress: (n) => progress.update(n) });
        } finally {
          progress.stop();
          lines.close();
        }
        console.log(publishSummary(stream, result));
      } finally {
        await nc.close();
      }
    });
}
