// Credentials and TLS on the command line: NATS credentials of every process, the coordinator's
// gRPC TLS and tokens file, and the client's token and TLS. Secrets come from files or the
// environment, never from flags' values (a flag shows in `ps`), and are never printed.
import { readFileSync } from 'node:fs';
import { Option, type Command } from 'commander';
import type { ClientConnectionOptions } from '../core/nats-connect.ts';
import type { ClientTls, ServerTls } from '../core/tls.ts';
import { parseTokensFile, type TokenEntry } from '../core/tokens.ts';
import { CliError } from './errors.ts';

function readSecretFile(path: string, what: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (e) {
    throw new CliError(`cannot read the ${what} file ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, { cause: e });
  }
}

const readPem = (path: string, what: string): Buffer => Buffer.from(readSecretFile(path, what), 'utf8');

/** What the NATS options parse to (commander's camel-cased names). */
export interface NatsCommandOptions {
  natsUser?: string;
  natsPassword?: string;
  natsPasswordFile?: string;
  natsToken?: string;
  natsTokenFile?: string;
  natsNkeyFile?: string;
  natsCreds?: string;
  natsTlsCa?: string;
  natsTlsCert?: string;
  natsTlsKey?: string;
}

/**
 * NATS credentials and TLS, shared by every command that connects to NATS. Passwords and tokens
 * come from a file or the environment (EDDY_NATS_PASSWORD, EDDY_NATS_TOKEN), not a flag's value.
 */
export function addNatsAuthOptions(command: Command): Command {
  return command
    .addOption(new Option('--nats-user <user>', 'NATS user (password from --nats-password-file or EDDY_NATS_PASSWORD)').env('EDDY_NATS_USER'))
    .addOption(new Option('--nats-password <password>').env('EDDY_NATS_PASSWORD').hideHelp())
    .addOption(new Option('--nats-password-file <file>', 'file holding the NATS password').env('EDDY_NATS_PASSWORD_FILE'))
    .addOption(new Option('--nats-token <token>').env('EDDY_NATS_TOKEN').hideHelp())
    .addOption(new Option('--nats-token-file <file>', 'file holding a NATS token (or EDDY_NATS_TOKEN)').env('EDDY_NATS_TOKEN_FILE'))
    .addOption(new Option('--nats-nkey-file <file>', 'file holding an nkey seed (SU...)').env('EDDY_NATS_NKEY_FILE'))
    .addOption(new Option('--nats-creds <file>', 'a .creds file (user JWT and seed; operator mode)').env('EDDY_NATS_CREDS'))
    .addOption(new Option('--nats-tls-ca <file>', 'CA bundle (PEM) the NATS server certificate must chain to').env('EDDY_NATS_TLS_CA'))
    .addOption(new Option('--nats-tls-cert <file>', 'client certificate (PEM) for NATS mutual TLS').env('EDDY_NATS_TLS_CERT'))
    .addOption(new Option('--nats-tls-key <file>', 'key (PEM) of --nats-tls-cert').env('EDDY_NATS_TLS_KEY'));
}

/** An empty value (as compose files often leave variables) means unset. */
function given<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== '' && v !== undefined)) as T;
}

export function natsAuthFrom(options: NatsCommandOptions): ClientConnectionOptions {
  const o = given(options);
  if ((o.natsTlsCert === undefined) !== (o.natsTlsKey === undefined)) throw new CliError('--nats-tls-cert and --nats-tls-key go together');
  const password = o.natsPasswordFile !== undefined ? readSecretFile(o.natsPasswordFile, 'NATS password').trim() : o.natsPassword;
  const token = o.natsTokenFile !== undefined ? readSecretFile(o.natsTokenFile, 'NATS token').trim() : o.natsToken;
  const tls: ClientTls | undefined =
    o.natsTlsCa !== undefined || o.natsTlsCert !== undefined
      ? {
          ...(o.natsTlsCa !== undefined ? { ca: readPem(o.natsTlsCa, 'NATS CA') } : {}),
          ...(o.natsTlsCert !== undefined ? { cert: readPem(o.natsTlsCert, 'NATS client certificate'), key: readPem(o.natsTlsKey!, 'NATS client key') } : {}),
        }
      : undefined;
  return {
    ...(o.natsUser ? { user: o.natsUser, password: password ?? '' } : {}),
    ...(!o.natsUser && token ? { token } : {}),
    ...(o.natsNkeyFile !== undefined ? { nkeySeed: readSecretFile(o.natsNkeyFile, 'nkey seed') } : {}),
    ...(o.natsCreds !== undefined ? { creds: readSecretFile(o.natsCreds, 'NATS creds') } : {}),
    ...(tls ? { tls } : {}),
  };
}

/** What the coordinator's gRPC security options parse to. */
export interface GrpcServerCommandOptions {
  grpcTlsCert?: string;
  grpcTlsKey?: string;
  grpcClientCa?: string;
  grpcTokens?: string;
  insecure?: boolean;
}

export function addGrpcServerSecurityOptions(command: Command): Command {
  return command
    .addOption(new Option('--grpc-tls-cert <file>', 'TLS certificate chain (PEM) of the gRPC server').env('EDDY_GRPC_TLS_CERT'))
    .addOption(new Option('--grpc-tls-key <file>', 'key (PEM) of --grpc-tls-cert').env('EDDY_GRPC_TLS_KEY'))
    .addOption(new Option('--grpc-client-ca <file>', 'CA (PEM) client certificates must chain to: mutual TLS; a certificate with O=admin or O=reader authenticates').env('EDDY_GRPC_CLIENT_CA'))
    .addOption(new Option('--grpc-tokens <file>', 'tokens file: "<name> <admin|reader> sha256:<hex>" per line (eddy token creates lines)').env('EDDY_GRPC_TOKENS'))
    .addOption(new Option('--insecure', 'serve a non-loopback gRPC address without TLS and authentication (anyone who reaches it can run code on the workers)'));
}

export function grpcServerSecurityFrom(options: GrpcServerCommandOptions): { grpcTls?: ServerTls; grpcTokens: TokenEntry[]; insecure: boolean } {
  const o = given(options);
  if ((o.grpcTlsCert === undefined) !== (o.grpcTlsKey === undefined)) throw new CliError('--grpc-tls-cert and --grpc-tls-key go together');
  if (o.grpcClientCa !== undefined && o.grpcTlsCert === undefined) throw new CliError('--grpc-client-ca needs --grpc-tls-cert and --grpc-tls-key');
  const grpcTls: ServerTls | undefined =
    o.grpcTlsCert !== undefined
      ? {
          cert: readPem(o.grpcTlsCert, 'gRPC certificate'),
          key: readPem(o.grpcTlsKey!, 'gRPC key'),
          ...(o.grpcClientCa !== undefined ? { clientCa: readPem(o.grpcClientCa, 'gRPC client CA') } : {}),
        }
      : undefined;
  let grpcTokens: TokenEntry[] = [];
  if (o.grpcTokens !== undefined) {
    try {
      grpcTokens = parseTokensFile(readSecretFile(o.grpcTokens, 'tokens'));
    } catch (e) {
      if (e instanceof CliError) throw e;
      throw new CliError(`${o.grpcTokens}: ${(e as Error).message}`, { cause: e });
    }
    if (grpcTokens.length === 0) throw new CliError(`${o.grpcTokens} holds no tokens`);
  }
  return { ...(grpcTls ? { grpcTls } : {}), grpcTokens, insecure: o.insecure === true };
}

/** What the client's global --token / --tls-* options parse to. */
export interface ClientSecurityCommandOptions {
  token?: string;
  tlsCa?: string;
  tlsCert?: string;
  tlsKey?: string;
  tls?: boolean;
}

/** The client's bearer token and TLS, from the global options (files read here). */
export function clientSecurityFrom(options: ClientSecurityCommandOptions): { token?: string; tls?: ClientTls } {
  const o = given(options);
  if ((o.tlsCert === undefined) !== (o.tlsKey === undefined)) throw new CliError('--tls-cert and --tls-key go together');
  const useTls = o.tls === true || o.tlsCa !== undefined || o.tlsCert !== undefined;
  const tls: ClientTls | undefined = useTls
    ? {
        ...(o.tlsCa !== undefined ? { ca: readPem(o.tlsCa, 'CA') } : {}),
        ...(o.tlsCert !== undefined ? { cert: readPem(o.tlsCert, 'client certificate'), key: readPem(o.tlsKey!, 'client key') } : {}),
      }
    : undefined;
  return { ...(o.token ? { token: o.token } : {}), ...(tls ? { tls } : {}) };
}
