// eddy up: a local cluster (nats-server, coordinator, N workers) until Ctrl-C.
import path from 'node:path';
import type { Command } from 'commander';
import { parseHostPort, parseHostPortOrOff, parsePort, parsePositiveInt } from '../arguments.ts';
import { CliError } from '../errors.ts';
import { listenForInterrupt } from '../interrupt.ts';
import { findNatsServer, startLocalCluster, type LocalCluster } from '../local-cluster.ts';
import { table } from '../format.ts';
import { serveControl } from '../up-control.ts';

export interface UpCommandOptions {
  workers: number;
  natsPort: number;
  grpc: string;
  http: string;
  data: string;
  logLevel: string;
}

export function printClusterInfo(cluster: LocalCluster): void {
  const rel = (file: string): string => path.relative(process.cwd(), file) || '.';
  const address = (name: string): string => (name === 'nats-server' ? cluster.natsUrl : name === 'coordinator' ? cluster.grpcAddress : '');
  console.log(table(cluster.processes.map((p) => [`  ${p.name}`, address(p.name), `pid ${p.pid}`, `log ${rel(p.logFile)}`])));
  console.log(`  data: ${rel(cluster.dataDir)} (object store ${rel(cluster.storeDir)})`);
  if (cluster.httpAddress) console.log(`  dashboard: http://${cluster.httpAddress}/`);
}

/**
 * Runs until SIGINT/SIGTERM (exit 0 after stopping everything) or until a child dies (stop the
 * rest, fail naming it).
 */
export async function superviseUntilStopped(cluster: LocalCluster, interrupt: ReturnType<typeof listenForInterrupt>): Promise<void> {
  interrupt.onForce(() => {
    cluster.kill();
    process.exit(130);
  });
  const outcome = await Promise.race([interrupt.requested.then(() => undefined), cluster.failed]);
  if (outcome === undefined) console.log('stopping…');
  await cluster.stop();
  if (outcome !== undefined) throw new CliError(`${outcome}; stopped the rest of the cluster`);
  console.log('stopped');
}

export function registerUp(program: Command): void {
  program
    .command('up')
    .description('run a local cluster (nats-server, a coordinator, N workers) until Ctrl-C')
    .option('--workers <n>', 'workers to start (ids w-1…w-N)', parsePositiveInt, 2)
    .option('--nats-port <port>', 'port of nats-server on 127.0.0.1', parsePort, 4222)
    .option('--grpc <host:port>', "the coordinator's gRPC address", parseHostPort, '127.0.0.1:7400')
    .option('--http <host:port|off>', "the coordinator's dashboard address, or off", parseHostPortOrOff, '127.0.0.1:7480')
    .option('--data <dir>', 'where JetStream, the object store, worker state and logs go', './data')
    .option('--log-level <level>', 'log level of the coordinator and workers', 'info')
    .action(async (options: UpCommandOptions) => {
      findNatsServer();
      using interrupt = listenForInterrupt();
      console.log(`starting nats-server, a coordinator and ${options.workers} worker${options.workers === 1 ? '' : 's'}…`);
      const cluster = await startLocalCluster({
        workers: options.workers,
        natsPort: options.natsPort,
        grpcAddress: options.grpc,
        httpAddress: options.http,
        dataDir: options.data,
        logLevel: options.logLevel,
        signal: interrupt.signal,
      });
      let control;
      try {
        control = await serveControl(cluster, (r) => {
          const changes = [r.added.length > 0 ? `started ${r.added.join(', ')}` : '', r.removed.length > 0 ? `stopped ${r.removed.join(', ')}` : ''].filter(Boolean);
          if (changes.length > 0) console.log(`eddy scale: ${changes.join('; ')}; ${r.workers.length} workers running`);
        });
      } catch (e) {
        await cluster.stop();
        throw e;
      }
      console.log('eddy is up:');
      printClusterInfo(cluster);
      console.log('use it from another shell:');
      // NATS has authentication on: `eddy publish` logs in as the producer.
      const producer = cluster.natsLogins.producer;
      console.log(`  export EDDY_ADDR=${cluster.grpcAddress} EDDY_NATS=${cluster.natsUrl} EDDY_NATS_USER=${producer.user} EDDY_NATS_PASSWORD_FILE=${producer.passwordFile}`);
      console.log('  eddy submit jobs/customer-experience/job.ts && eddy workers');
      console.log(`  eddy scale N${options.data === './data' ? '' : ` --data ${options.data}`}   # add or remove workers`);
      console.log('press Ctrl-C to stop');
      try {
        await superviseUntilStopped(cluster, interrupt);
      } finally {
        control.close();
      }
    });
}
