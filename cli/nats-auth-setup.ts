// NATS with authentication on, for `eddy up`, the container stack's init step and the tests: a
// random password per role (coordinator, worker, producer, client), kept in files of the data
// dir (0600), and a nats-server config that includes Eddy's permission set
// (deploy/nats-permissions.conf) and gives each role's user its permissions.
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

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
  logins: Record<NatsRole, NatsRoleLogin>;
}

const userOf = (role: NatsRole): string => `eddy-${role}`;
const permissionsOf = (role: NatsRole): string => `$EDDY_${role.toUpperCase()}`;

/**
 * Writes (or reuses) the passwords and the config in `dir`. Passwords survive restarts, so that a
 * producer's saved login keeps working across `eddy up` runs.
 */
export function prepareNatsAuth(dir: string): NatsAuthSetup {
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const logins = {} as Record<NatsRole, NatsRoleLogin>;
  const users: string[] = [];
  for (const role of NATS_ROLES) {
    const passwordFile = path.join(dir, `${role}.password`);
    if (!fs.existsSync(passwordFile)) fs.writeFileSync(passwordFile, randomBytes(24).toString('hex') + '\n', { mode: 0o600 });
    const password = fs.readFileSync(passwordFile, 'utf8').trim();
    if (!/^[0-9a-f]{16,}$/.test(password)) throw new Error(`${passwordFile} does not hold a generated password (hex); remove it to make a new one`);
    logins[role] = { user: userOf(role), passwordFile };
    users.push(`    { user: "${userOf(role)}", password: "${password}", permissions: ${permissionsOf(role)} }`);
  }
  fs.copyFileSync(NATS_PERMISSIONS_FILE, path.join(dir, 'nats-permissions.conf'));
  const configFile = path.join(dir, 'nats-auth.conf');
  const config = [
    '# Written by Eddy (cli/nats-auth-setup.ts): one user per role, with the permissions of',
    '# nats-permissions.conf. The passwords are the <role>.password files beside this one.',
    'include ./nats-permissions.conf',
    'authorization {',
    '  users = [',
    ...users,
    '  ]',
    '}',
    '',
  ].join('\n');
  fs.writeFileSync(configFile, config, { mode: 0o600 });
  return { configFile, logins };
}

/** The environment that logs an Eddy process in as `role` (password by file, not by value). */
export function natsLoginEnv(login: NatsRoleLogin): Record<string, string> {
  return { EDDY_NATS_USER: login.user, EDDY_NATS_PASSWORD_FILE: login.passwordFile };
}
