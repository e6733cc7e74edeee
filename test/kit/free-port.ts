// A free TCP port on loopback: bind port 0, read what the kernel chose, release it.
//
// There is a window between release and reuse in which another process could take the port;
// startNatsServer retries on "address already in use" for that reason.
import { createServer } from 'node:net';

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen({ host: '127.0.0.1', port: 0, exclusive: true }, () => {
      const address = server.address();
      if (address === null || typeof address === 'string') {
        server.close();
        reject(new Error(`unexpected server address ${String(address)}`));
        return;
      }
      server.close((err) => (err ? reject(err) : resolve(address.port)));
    });
  });
}

/**
 * `count` distinct free ports. Each is released before the next is asked for, so the kernel may
 * hand one out twice (a compose test asking for 15 got 14 distinct): a repeat is asked for again.
 */
export async function freePorts(count: number): Promise<number[]> {
  const ports = new Set<number>();
  for (let asked = 0; ports.size < count; asked++) {
    if (asked >= count * 10) throw new Error(`no ${count} distinct free ports after ${asked} tries`);
    ports.add(await freePort());
  }
  return [...ports];
}
