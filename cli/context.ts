// What every command that talks to the coordinator shares: the global options and a client.
import type { Command } from 'commander';
import { EddyClient } from './client.ts';
import { clientSecurityFrom, type ClientSecurityCommandOptions } from './security-options.ts';

export interface GlobalOptions extends ClientSecurityCommandOptions {
  /** host:port of the coordinator's gRPC server. */
  addr: string;
  /** Deadline of each gRPC call, in ms. */
  timeoutMs: number;
}

export function globalOptions(command: Command): GlobalOptions {
  const o = command.optsWithGlobals<GlobalOptions>();
  return { ...o, addr: o.addr, timeoutMs: o.timeoutMs };
}

/** True when the user set --timeout-ms (or its environment), rather than taking the default. */
export function timeoutGiven(command: Command): boolean {
  const source = command.getOptionValueSourceWithGlobals('timeoutMs');
  return source !== undefined && source !== 'default';
}

/** Runs `use` with a client for the global --addr and --timeout-ms, and closes it after. */
export async function withClient<T>(command: Command, use: (client: EddyClient) => Promise<T>): Promise<T> {
  const o = globalOptions(command);
  const client = new EddyClient({ address: o.addr, timeoutMs: o.timeoutMs, ...clientSecurityFrom(o) });
  try {
    return await use(client);
  } finally {
    client.close();
  }
}
