// How `eddy scale N` reaches a running `eddy up`: a Unix socket in the cluster's data dir
// (<data>/eddy-up.sock), one JSON request per line and one JSON reply per line. A socket file is
// only reachable by users allowed into the data dir, names the cluster the same way every other
// command does (--data), and is never on the network.
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { CliError } from './errors.ts';
import type { LocalCluster, ScaleResult } from './local-cluster.ts';

export const CONTROL_SOCKET_NAME = 'eddy-up.sock';
/** Unix socket paths are limited to ~107 bytes on Linux. */
const MAX_SOCKET_PATH_BYTES = 107;
/** Starting workers waits for them to be ready; stopping gives them a grace period. */
export const SCALE_TIMEOUT_MS = 120_000;

type Request = { op: 'scale'; workers: number } | { op: 'status' };
type Reply = ({ ok: true } & ScaleResult) | { ok: false; error: string };

export function controlSocketPath(dataDir: string): string {
  const socket = path.join(path.resolve(dataDir), CONTROL_SOCKET_NAME);
  if (Buffer.byteLength(socket) > MAX_SOCKET_PATH_BYTES) {
    throw new CliError(`the data dir path is too long for its control socket (${socket}): use a shorter --data`);
  }
  return socket;
}

function connectTo(socket: string): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect(socket);
    s.once('connect', () => resolve(s));
    s.once('error', reject);
  });
}

/**
 * Serves scale requests for `cluster` until closed. Fails when another `eddy up` already serves
 * this data dir; a socket file left by one that was killed is replaced.
 */
export async function serveControl(cluster: LocalCluster, onScaled: (result: ScaleResult) => void = () => {}): Promise<{ socket: string; close(): void }> {
  const socket = controlSocketPath(cluster.dataDir);
  if (fs.existsSync(socket)) {
    const other = await connectTo(socket).catch(() => undefined);
    if (other !== undefined) {
      other.destroy();
      throw new CliError(`another eddy up is running with data dir ${cluster.dataDir} (it answers on ${socket})`);
    }
    fs.rmSync(socket, { force: true });
  }
  const server = net.createServer((conn) => {
    let buffered = '';
    conn.setEncoding('utf8');
    conn.on('error', () => conn.destroy());
    conn.on('data', (chunk: string) => {
      buffered += chunk;
      const newline = buffered.indexOf('\n');
      if (newline === -1) return;
      const line = buffered.slice(0, newline);
      buffered = '';
      const reply = (r: Reply) => conn.end(`${JSON.stringify(r)}\n`);
      let request: Request;
      try {
        request = JSON.parse(line) as Request;
      } catch {
        reply({ ok: false, error: 'bad request: not JSON' });
        return;
      }
      const outcome: Promise<ScaleResult> =
        request.op === 'scale'
          ? cluster.scale(request.workers).then((r) => (onScaled(r), r))
          : request.op === 'status'
            ? Promise.resolve({ added: [], removed: [], workers: cluster.workerIds() })
            : Promise.reject(new Error(`unknown op ${JSON.stringify((request as { op?: unknown }).op)}`));
      outcome.then(
        (result) => reply({ ok: true, ...result }),
        (e: unknown) => reply({ ok: false, error: (e as Error).message }),
      );
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(socket, () => resolve());
  });
  fs.chmodSync(socket, 0o600);
  server.unref();
  return {
    socket,
    close: () => {
      server.close();
      fs.rmSync(socket, { force: true });
    },
  };
}

/** Sends one request to the `eddy up` running with `dataDir` and returns its reply. */
export async function requestControl(dataDir: string, request: Request, timeoutMs = SCALE_TIMEOUT_MS): Promise<ScaleResult> {
  const socket = controlSocketPath(dataDir);
  let conn: net.Socket;
  try {
    conn = await connectTo(socket);
  } catch {
    throw new CliError(`no eddy up is running with data dir ${path.resolve(dataDir)} (nothing answers on ${socket}); start one with \`eddy up\` or pass its --data`);
  }
  return new Promise<ScaleResult>((resolve, reject) => {
    let text = '';
    const timer = setTimeout(() => {
      conn.destroy();
      reject(new CliError(`eddy up did not answer within ${timeoutMs / 1000} s`));
    }, timeoutMs);
    conn.setEncoding('utf8');
    conn.on('data', (chunk: string) => (text += chunk));
    conn.on('error', (e) => {
      clearTimeout(timer);
      reject(new CliError(`lost the connection to eddy up: ${e.message}`));
    });
    conn.on('end', () => {
      clearTimeout(timer);
      try {
        const reply = JSON.parse(text) as Reply;
        if (reply.ok) resolve({ added: reply.added, removed: reply.removed, workers: reply.workers });
        else reject(new CliError(reply.error));
      } catch {
        reject(new CliError(`eddy up sent a reply that is not JSON: ${text.slice(0, 200)}`));
      }
    });
    conn.write(`${JSON.stringify(request)}\n`);
  });
}
