// A real NATS cluster per test: n nats-servers with JetStream on loopback ports, routed to each
// other, each with its own store dir. Ready means usable: JetStream answers through every node
// (a meta leader is elected). A node can be killed and started again on the same store and ports.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from '@nats-io/transport-node';
import { jetstreamManager, StorageType } from '@nats-io/jetstream';
import { freePorts } from './free-port.ts';
import { startProcess, type ChildHandle } from './processes.ts';
import { natsServerBinary } from './nats-server.ts';
import { waitFor } from './wait-for.ts';

const STARTUP_DEADLINE_MS = 30_000;
const STOP_TIMEOUT_MS = 5_000;

export interface NatsClusterNode {
  /** The server name (n1, n2, …), as JetStream names stream leaders. */
  name: string;
  url: string;
  /** Running, or undefined after kill() until start(). */
  process: ChildHandle | undefined;
}

export interface NatsCluster extends AsyncDisposable {
  /** Every node's URL, comma-separated: what Eddy's --nats takes. */
  url: string;
  nodes: NatsClusterNode[];
  /** Kills node i (SIGKILL by default) and waits for its exit; its store stays. */
  kill(i: number, signal?: NodeJS.Signals): Promise<void>;
  /** Starts node i again on its store and ports; resolves once it is ready. */
  start(i: number): Promise<void>;
  /** The node that leads a stream (by server name), or undefined. */
  streamLeader(stream: string): Promise<number | undefined>;
  /** No credentials in a test cluster. */
  loginEnv(): Record<string, string>;
  login(): Record<string, never>;
  output(): string;
  stop(): Promise<void>;
}

/** A cluster whose nodes answer but never agreed on their peers. */
class PlacementError extends Error {}

/**
 * Starts `size` nodes. A cluster that answers on every node but places no stream of `size`
 * replicas within 30 s is started again from scratch (new ports, new directories), at most three
 * times: CI saw a cluster of Debian's nats-server 2.10 refuse placement for 60 s at load, with
 * "Duplicate Route" in its logs, and the same test pass on its next run.
 */
export async function startNatsCluster(size = 3): Promise<NatsCluster> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startNatsClusterOnce(size);
    } catch (e) {
      if (!(e instanceof PlacementError) || attempt === 3) throw e;
      process.stderr.write(`# NATS cluster start ${attempt} of 3 placed no stream; starting it again: ${e.message.split('\n')[0]}\n`);
    }
  }
}

async function startNatsClusterOnce(size: number): Promise<NatsCluster> {
  const root = await mkdtemp(join(tmpdir(), 'eddy-nats-cluster-'));
  const binary = natsServerBinary();
  const free = await freePorts(2 * size);
  const ports = Array.from({ length: size }, (_, i) => ({ client: free[2 * i]!, route: free[2 * i + 1]! }));
  const routes = ports.map((p) => `nats://127.0.0.1:${p.route}`).join(',');
  const nodes: NatsClusterNode[] = ports.map((p, i) => ({ name: `n${i + 1}`, url: `nats://127.0.0.1:${p.client}`, process: undefined }));
  const url = nodes.map((n) => n.url).join(',');

  const startNode = async (i: number): Promise<void> => {
    const p = ports[i]!;
    const node = nodes[i]!;
    const args = ['-a', '127.0.0.1', '-p', String(p.client), '-n', node.name, '-js', '-sd', join(root, node.name), '--cluster_name', 'eddy-test', '--cluster', `nats://127.0.0.1:${p.route}`, '--routes', routes];
    node.process = await startProcess({ name: `nats-server ${node.name} :${p.client}`, command: binary, args, readyLine: /Server is ready/, readyTimeoutMs: STARTUP_DEADLINE_MS });
  };

  const usable = async (nodeUrl: string): Promise<boolean> => {
    const nc = await connect({ servers: nodeUrl, reconnect: false, timeout: 1_000 });
    try {
      await (await jetstreamManager(nc, { timeout: 1_000 })).getAccountInfo();
      return true;
    } finally {
      await nc.close();
    }
  };

  const placesReplicas = async (urls: string, replicas: number): Promise<boolean> => {
    const nc = await connect({ servers: urls.split(','), timeout: 2_000 });
    try {
      const jsm = await jetstreamManager(nc, { timeout: 2_000 });
      await jsm.streams.add({ name: 'KIT_READY', subjects: ['kit.ready'], num_replicas: replicas, storage: StorageType.Memory });
      await jsm.streams.delete('KIT_READY');
      return true;
    } finally {
      await nc.close();
    }
  };

  const stop = async (): Promise<void> => {
    await Promise.all(nodes.map((n) => n.process?.stop(STOP_TIMEOUT_MS)));
    await rm(root, { recursive: true, force: true });
  };

  try {
    await Promise.all(nodes.map((_, i) => startNode(i)));
    for (const n of nodes) await waitFor(() => usable(n.url), { timeoutMs: STARTUP_DEADLINE_MS, what: `JetStream through ${n.name} of the NATS cluster`, intervalMs: 100 });
    // Answering is not placing: until the meta leader has heard from every peer, a stream of
    // `size` replicas is refused ("no suitable peers for placement"). A failure says what each
    // node logged.
    await waitFor(() => placesReplicas(url, size), { timeoutMs: STARTUP_DEADLINE_MS, what: `a stream of ${size} replicas placed on the NATS cluster`, intervalMs: 250 }).catch((e: Error) => {
      const logs = nodes.map((n) => `--- ${n.name}:\n${n.process?.output().slice(-1_500) ?? '(not running)'}`).join('\n');
      throw new PlacementError(`${e.message}\n${logs}`, { cause: e });
    });
  } catch (e) {
    await stop();
    throw e;
  }

  let stopping: Promise<void> | undefined;
  return {
    url,
    nodes,
    kill: async (i, signal = 'SIGKILL') => {
      const p = nodes[i]!.process;
      nodes[i]!.process = undefined;
      p?.kill(signal);
      await p?.exited;
    },
    start: async (i) => {
      await startNode(i);
      await waitFor(() => usable(nodes[i]!.url), { timeoutMs: STARTUP_DEADLINE_MS, what: `JetStream through ${nodes[i]!.name} again`, intervalMs: 100 });
    },
    streamLeader: async (stream) => {
      const nc = await connect({ servers: nodes.filter((n) => n.process !== undefined).map((n) => n.url), timeout: 2_000 });
      try {
        const leader = (await (await jetstreamManager(nc)).streams.info(stream)).cluster?.leader;
        const i = nodes.findIndex((n) => n.name === leader);
        return i < 0 ? undefined : i;
      } finally {
        await nc.close();
      }
    },
    loginEnv: () => ({}),
    login: () => ({}),
    output: () => nodes.map((n) => `== ${n.name}\n${n.process?.output() ?? '(not running)'}`).join('\n'),
    stop: () => (stopping ??= stop()),
    [Symbol.asyncDispose]: () => (stopping ??= stop()),
  };
}
