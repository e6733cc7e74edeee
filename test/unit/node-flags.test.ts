import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { test } from 'node:test';
import { NODE_FLAGS } from '../../core/node-flags.ts';
import { cliArgs } from '../kit/eddy.ts';

test('node flags - the image\'s entry point and the test kit start Eddy with every flag of core/node-flags.ts', async () => {
  const entrypoint = await readFile(new URL('../../deploy/docker-entrypoint.sh', import.meta.url), 'utf8');
  const exec = entrypoint.split('\n').find((line) => line.startsWith('exec node '));
  assert.ok(exec !== undefined, 'the entry point execs node');
  for (const flag of NODE_FLAGS) assert.ok(exec.split(' ').includes(flag), `${flag} in "${exec}"`);
  assert.deepEqual(cliArgs(['worker']).slice(0, NODE_FLAGS.length), [...NODE_FLAGS]);
});
