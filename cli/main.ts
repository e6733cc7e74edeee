// The eddy command: `node --import tsx cli/main.ts …`, `npm run eddy -- …`, or cli/bin/eddy.js.
// Errors end here: one line on stderr, `eddy: <message>`, exit code 1 (2 for a bad command
// line). EDDY_DEBUG=1 adds the stack, for whoever is debugging the CLI itself.
import { CommanderError } from 'commander';
import { describeError, EXIT } from './errors.ts';
import { createProgram } from './program.ts';

// The AWS SDK warns once per process that its releases after early 2027 need Node 22
// (docs/STACK-NOTES.md); its version is pinned, so the warning is only noise. The SDK reads this
// when the first S3 client is made, not on import, so here (before any command runs) is early
// enough; child processes (`eddy up`'s roles) inherit it.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';

function fail(e: unknown): void {
  const { message, exitCode } = describeError(e);
  process.stderr.write(`eddy: ${message}\n`);
  if (process.env.EDDY_DEBUG && e instanceof Error && e.stack) process.stderr.write(`${e.stack}\n`);
  process.exitCode = exitCode;
}

// A reader that stops early (`eddy jobs | head -1`) is not an error.
process.stdout.on('error', (e: NodeJS.ErrnoException) => {
  if (e.code === 'EPIPE') process.exit(EXIT.ok);
});
// An error that escapes a command's promise chain still ends as one line, never a stack.
process.on('uncaughtException', (e) => {
  fail(e);
  process.exit(process.exitCode ?? EXIT.failure);
});
process.on('unhandledRejection', (e) => {
  fail(e);
  process.exit(process.exitCode ?? EXIT.failure);
});

try {
  await createProgram().parseAsync(process.argv);
} catch (e) {
  if (e instanceof CommanderError) {
    // Help and version end with code 0; anything else commander rejects is a usage error, and
    // commander has already printed it (see program.ts).
    process.exitCode = e.exitCode === 0 ? EXIT.ok : EXIT.usage;
  } else {
    fail(e);
  }
}
