// eddy token create: a new bearer token for the coordinator. The token is printed once on stdout;
// only its SHA-256 is appended to the tokens file the coordinator reads (--grpc-tokens).
import { appendFileSync, chmodSync, existsSync, readFileSync } from 'node:fs';
import { Option, type Command } from 'commander';
import { formatTokenLine, generateToken, parseTokensFile, ROLES, type Role } from '../../core/tokens.ts';
import { CliError } from '../errors.ts';

interface TokenCreateOptions {
  role: Role;
  name: string;
  file: string;
}

export function registerToken(program: Command): void {
  const token = program.command('token').description('manage the bearer tokens the coordinator accepts');
  token
    .command('create')
    .description('create a token: print it once, append its hash to the tokens file (then restart the coordinator)')
    .addOption(new Option('--role <role>', 'admin (submit, cancel, savepoint) or reader (queries, listings)').choices(ROLES).makeOptionMandatory())
    .requiredOption('--name <name>', 'who holds the token (shown in the coordinator log when a call is refused)')
    .requiredOption('--file <file>', 'the tokens file (created 0600 when missing)')
    .action((options: TokenCreateOptions) => {
      const value = generateToken();
      let line: string;
      try {
        line = formatTokenLine(options.name, options.role, value);
      } catch (e) {
        throw new CliError((e as Error).message, { cause: e });
      }
      const created = !existsSync(options.file);
      if (!created && parseTokensFile(readFileSync(options.file, 'utf8')).some((t) => t.name === options.name)) {
        throw new CliError(`${options.file} already has a token named ${options.name}: remove its line first to replace it`);
      }
      appendFileSync(options.file, `${line}\n`, { mode: 0o600 });
      if (created) chmodSync(options.file, 0o600);
      console.log(value);
    });
}
