// NATS with authentication on, for `eddy up`, the container stack's init step and the tests: a
// random password per role (coordinator, worker, producer, client), kept in files of the data
// dir (0600), and a nats-server config that includes Eddy's permission set
// (deploy/nats-permissions.conf) and gives each role's user its permissions.
//
// Per-worker users (`eddy up`; README, "Security"): with `workerIds`, each worker gets a user of
// its own instead of the shared eddy-worker, allowed to subscribe only to its own control
// subjects and inbox, and denied publishing on every other known worker's eddy.ctl.from.<id>.
// NATS permissions are allow and deny lists where deny wins, and workers must publish to any
// subject a job names as a sink (allow ">"), so "every worker's subjects but its own" can only be
// said by naming the others: the config is rewritten, and nats-server reloaded (SIGHUP), whenever
// a worker joins. An id nobody has a user for yet is covered by the coordinator's admission probe
// (coordinator/worker-registry.ts): only its own user could answer on its control subjects.
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseWorkerId } from '../core/ids.ts';

export const NATS_ROLES = ['coordinator', 'worker', 'producer', 'client'] as const;
export type NatsRole = (typeof NATS_ROLES)[number];

/** The permission set, one block per role (deploy/nats-permissions.conf). */
export const NATS_PERMISSIONS_FILE = fileURLToPath(new URL('../deploy/nats-permissions.conf', import.meta.url));

export interface NatsRoleLogin {
  user: string;
  /** A file holding the password (what --nats-password-file takes). */
  passwordFile: string;
}

export interface NatsAuthSetup {
  /** The nats-server config to start with (-c); flags may still set address, port and store. */
  configFile: string;
  /** Each role's login; with per-worker users, `worker` is absent from the config (unusable). */
  logins: Record<NatsRole, NatsRoleLogin>;
  /** The login of each worker id given (per-worker users). */
  workerLogins: Map<string, NatsRoleLogin>;
}

export interface NatsAuthOptions {
  /**
   * Give each of these worker ids a NATS user of its own (eddy-worker-<id>) instead of the shared
   * eddy-worker user. Call again with the longer list when a worker joins, then reload the server.
   * @default one shared worker user
   */
  workerIds?: readonly string[];
  /**
   * JetStream's store directory, written into the config (then start nats-server without -js and
   * -sd: it refuses both). Needed when the server is reloaded: a reload applies the config file,
   * and JetStream enabled by flags only would be switched off. @default JetStream left to flags
   */
  jetstreamStoreDir?: string;
}

const userOf = (role: NatsRole): string => `eddy-${role}`;
const permissionsOf = (role: NatsRole): string => `$EDDY_${role.toUpperCase()}`;

/**
 * Writes (or reuses) the passwords and the config in `dir`. Passwords survive restarts, so that a
 * producer's saved login keeps working across `eddy up` runs.
 */
export function prepareNatsAuth(dir: string, options: NatsAuthOptions = {}): NatsAuthSetup {
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const perWorker = options.workerIds !== undefined;
  const logins = {} as Record<NatsRole, NatsRoleLogin>;
  const users: string[] = [];
  for (const role of NATS_ROLES) {
    const { login, password } = passwordLogin(dir, role, userOf(role));
    logins[role] = login;
    if (!(perWorker && role === 'worker')) users.push(`    { user: "${login.user}", password: "${password}", permissions: ${permissionsOf(role)} }`);
  }
  const workerLogins = new Map<string, NatsRoleLogin>();
  if (perWorker) {
    const ids = [...new Set(options.workerIds)].map((id) => parseWorkerId(id));
    const baseDeny = workerPublishDeny();
    for (const id of ids) {
      const { login, password } = passwordLogin(dir, `worker-${id}`, `eddy-worker-${id}`);
      workerLogins.set(id, login);
      users.push(`    { user: "${login.user}", password: "${password}", permissions: ${workerPermissions(id, ids, baseDeny)} }`);
    }
  }
  // nats-server refuses a variable nobody uses: with per-worker users the shared block goes.
  const permissions = fs.readFileSync(NATS_PERMISSIONS_FILE, 'utf8');
  fs.writeFileSync(path.join(dir, 'nats-permissions.conf'), perWorker ? permissions.replace(WORKER_BLOCK, '# EDDY_WORKER: replaced by a user per worker (nats-auth.conf).') : permissions);
  const configFile = path.join(dir, 'nats-auth.conf');
  const config = [
    '# Written by Eddy (cli/nats-auth-setup.ts): one user per role, with the permissions of',
    '# nats-permissions.conf. The passwords are the <role>.password files beside this one.',
    ...(perWorker ? ['# Workers have a user each (worker-<id>.password), held to their own control subjects.'] : []),
    ...(options.jetstreamStoreDir !== undefined ? [`jetstream { store_dir: ${JSON.stringify(options.jetstreamStoreDir)} }`] : []),
    'include ./nats-permissions.conf',
    'authorization {',
    '  users = [',
    ...users,
    '  ]',
    '}',
    '',
  ].join('\n');
  // Written whole and renamed: a reload never reads half a file.
  fs.writeFileSync(`${configFile}.tmp`, config, { mode: 0o600 });
  fs.renameSync(`${configFile}.tmp`, configFile);
  return { configFile, logins, workerLogins };
}

/** A login whose password is generated once into `<name>.password` (0600) and reused after. */
function passwordLogin(dir: string, name: string, user: string): { login: NatsRoleLogin; password: string } {
  const passwordFile = path.join(dir, `${name}.password`);
  if (!fs.existsSync(passwordFile)) fs.writeFileSync(passwordFile, randomBytes(24).toString('hex') + '\n', { mode: 0o600 });
  const password = fs.readFileSync(passwordFile, 'utf8').trim();
  if (!/^[0-9a-f]{16,}$/.test(password)) throw new Error(`${passwordFile} does not hold a generated password (hex); remove it to make a new one`);
  return { login: { user, passwordFile }, password };
}

/**
 * One worker's permissions: the shared worker role's (its publish deny list, read from
 * deploy/nats-permissions.conf so that there is one list), narrowed to its own id: no publishing
 * as another known worker or into any worker's inbox, and subscribing only to the channels and
 * query subjects, its own control subjects and its own inbox.
 */
function workerPermissions(id: string, ids: readonly string[], baseDeny: readonly string[]): string {
  const deny = [...baseDeny, '_INBOX.worker.>', ...ids.filter((other) => other !== id).map((other) => `eddy.ctl.from.${other}.>`)];
  const list = (subjects: readonly string[]) => `[${subjects.map((x) => `"${x}"`).join(', ')}]`;
  return `{ publish: { allow: [">"], deny: ${list(deny)} }, subscribe: { allow: ${list(['eddy.*.*.*', `eddy.ctl.worker.${id}.>`, `_INBOX.worker.${id}.>`])} }, allow_responses: true }`;
}

/** The EDDY_WORKER block of deploy/nats-permissions.conf, up to its closing brace at the start of a line. */
const WORKER_BLOCK = /^EDDY_WORKER = \{[\s\S]*?^\}/m;

/** The publish deny list of the EDDY_WORKER block of deploy/nats-permissions.conf. */
function workerPublishDeny(): string[] {
  const text = fs.readFileSync(NATS_PERMISSIONS_FILE, 'utf8');
  const block = WORKER_BLOCK.exec(text)?.[0];
  const deny = block === undefined ? undefined : /deny:\s*\[([\s\S]*?)\]/.exec(block)?.[1];
  if (deny === undefined) throw new Error(`${NATS_PERMISSIONS_FILE} has no EDDY_WORKER block with a publish deny list`);
  return [...deny.matchAll(/"([^"]+)"/g)].map((m) => m[1]!);
}

/** The environment that logs an Eddy process in as `role` (password by file, not by value). */
export function natsLoginEnv(login: NatsRoleLogin): Record<string, string> {
  return { EDDY_NATS_USER: login.user, EDDY_NATS_PASSWORD_FILE: login.passwordFile };
}
