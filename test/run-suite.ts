// Runs test files in the order given, N at a time, with the spec reporter: what `make test` runs.
// `node --test a b c` sorts its files by path before it runs them (Node 20's createTestFileList),
// so the order the Makefile chose (the longest files first, the Docker compose tests apart) was
// not the order they ran in: test/e2e, then test/fault, then test/unit, alphabetically. run()
// takes the files in the order of its `files` option. Each file still runs in a process of its
// own, started with this process's node options (--import tsx), as under `node --test`.
import { run } from 'node:test';
import { spec } from 'node:test/reporters';
import { parseArgs } from 'node:util';

const { values, positionals } = parseArgs({ options: { concurrency: { type: 'string', default: '2' } }, allowPositionals: true });
const concurrency = Number(values.concurrency);
if (!Number.isSafeInteger(concurrency) || concurrency < 1) throw new Error(`--concurrency ${values.concurrency} is not a positive integer`);
if (positionals.length === 0) throw new Error('usage: node --import tsx test/run-suite.ts [--concurrency N] <test file>...');

const stream = run({ files: positionals, concurrency });
// As `node --test` does: a failed test (not a todo) fails the run.
stream.on('test:fail', (data: { todo?: string | boolean }) => {
  if (data.todo === undefined || data.todo === false) process.exitCode = 1;
});
stream.compose(new spec()).pipe(process.stdout);
