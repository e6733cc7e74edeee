#!/usr/bin/env node
// The `eddy` bin: runs cli/main.ts under tsx in a child node with the same arguments, stdio and
// exit status.
//
// Signals: a terminal's Ctrl-C reaches the whole foreground process group, so the child gets
// SIGINT on its own; forwarding it too would count as a second Ctrl-C (which forces a stop).
// SIGTERM and SIGHUP are usually sent to this pid alone, so they are forwarded.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const main = fileURLToPath(new URL('../main.ts', import.meta.url));
const child = spawn(process.execPath, ['--import', import.meta.resolve('tsx'), main, ...process.argv.slice(2)], { stdio: 'inherit' });

process.on('SIGINT', () => {});
for (const signal of ['SIGTERM', 'SIGHUP']) {
  process.on(signal, () => {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
  });
}

child.on('error', (e) => {
  process.stderr.write(`eddy: could not start node: ${e.message}\n`);
  process.exit(1);
});
child.on('exit', (code, signal) => {
  if (signal !== null) {
    // Die the same way, so a shell sees "killed by SIGxxx" rather than a plain exit code.
    process.removeAllListeners(signal);
    process.kill(process.pid, signal);
  } else {
    process.exit(code ?? 1);
  }
});
