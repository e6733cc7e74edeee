// The eddy command line: global options and every command, with commander's error output
// reshaped into Eddy's (one `eddy: …` line, then how to use the command).
import { Command, Option } from 'commander';
import { DEFAULT_ADDR, DEFAULT_TIMEOUT_MS, parseHostPorts, parsePositiveInt } from './arguments.ts';
import { registerBuild } from './commands/build.ts';
import { registerCoordinator } from './commands/coordinator.ts';
import { registerDemo } from './commands/demo.ts';
import { registerJobs } from './commands/jobs.ts';
import { registerPublish } from './commands/publish.ts';
import { registerNexmark } from './commands/nexmark.ts';
import { registerQuery } from './commands/query.ts';
import { registerScale } from './commands/scale.ts';
import { registerSubmit } from './commands/submit.ts';
import { registerToken } from './commands/token.ts';
import { registerUp } from './commands/up.ts';
import { registerWorker } from './commands/worker.ts';
import { registerWorkers } from './commands/workers.ts';

function commandPath(command: Command): string {
  const names: string[] = [];
  for (let c: Command | null = command; c; c = c.parent) names.unshift(c.name());
  return names.join(' ');
}

/** After commander's error line: the root lists the commands, a command shows its usage. */
function reshapeErrors(command: Command): void {
  command.configureOutput({
    outputError: (message, write) => {
      write(`eddy: ${message.replace(/^error:\s*/i, '').trim()}\n`);
      if (command.parent === null) write(command.helpInformation());
      else write(`usage: ${commandPath(command)} ${command.usage()}\n(see ${commandPath(command)} --help)\n`);
    },
  });
  for (const sub of command.commands) reshapeErrors(sub);
}

export function createProgram(): Command {
  const program = new Command('eddy')
    .description('Eddy: a distributed, stateful stream processor on NATS. Build, submit and query jobs; run a local cluster.')
    .addOption(new Option('--addr <host:port[,host:port...]>', "the coordinator's gRPC address; several, comma-separated, with standby coordinators").env('EDDY_ADDR').default(DEFAULT_ADDR).argParser(parseHostPorts))
    .addOption(new Option('--timeout-ms <n>', 'deadline of each call to the coordinator').default(DEFAULT_TIMEOUT_MS).argParser(parsePositiveInt))
    .addOption(new Option('--token <token>', 'bearer token for the coordinator (prefer EDDY_TOKEN: a flag shows in ps)').env('EDDY_TOKEN'))
    .addOption(new Option('--tls', 'TLS to the coordinator, trusting the system roots').env('EDDY_TLS'))
    .addOption(new Option('--tls-ca <file>', 'TLS to the coordinator, trusting this CA (PEM)').env('EDDY_TLS_CA'))
    .addOption(new Option('--tls-cert <file>', 'client certificate (PEM) for mutual TLS').env('EDDY_TLS_CERT'))
    .addOption(new Option('--tls-key <file>', 'key (PEM) of --tls-cert').env('EDDY_TLS_KEY'))
    .showSuggestionAfterError(true)
    .exitOverride();

  registerUp(program);
  registerScale(program);
  registerDemo(program);
  registerBuild(program);
  registerSubmit(program);
  registerJobs(program);
  registerQuery(program);
  registerWorkers(program);
  registerPublish(program);
  registerNexmark(program);
  registerToken(program);
  registerCoordinator(program);
  registerWorker(program);

  // exitOverride is inherited only by commands added after it is set; set it on each.
  const everyCommand = (c: Command): Command[] => [c, ...c.commands.flatMap(everyCommand)];
  for (const c of everyCommand(program)) c.exitOverride();
  reshapeErrors(program);
  return program;
}
