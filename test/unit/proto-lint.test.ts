// scripts/lint-protos.ts: the repository's public .proto files pass; a file that breaks the rules
// is reported rule by rule.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { lintProtos } from '../../scripts/lint-protos.ts';

test('proto lint - the public API passes', () => {
  assert.deepEqual(lintProtos(), []);
});

test('proto lint - missing comments, a bad zero value, non-standard rpc names, a wrong package and an internal package in a public one are reported', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'eddy-proto-lint-'));
  try {
    await mkdir(join(dir, 'eddy/v9'), { recursive: true });
    await writeFile(
      join(dir, 'eddy/v9/bad.proto'),
      `syntax = "proto3";
package eddy.v9;
// A service.
service Things {
  // Gets a thing.
  rpc GetThing(GetThingRequest) returns (Thing);
}
// A request.
message GetThingRequest {
  string id = 1;
}
message Thing {
  // Its name.
  string name = 1;
}
// A colour.
enum Colour {
  // Red.
  COLOUR_RED = 0;
}
`,
    );
    await writeFile(join(dir, 'eddy/v9/control.proto'), 'syntax = "proto3";\npackage eddy.v9.control;\nmessage Ping {}\n');
    const findings = lintProtos(`${dir}/`);
    const rules = findings.map((f) => f.split(':')[0] ?? '');
    assert.ok(rules.includes('COMMENTS eddy.v9.GetThingRequest.id'), findings.join('\n'));
    assert.ok(rules.includes('COMMENTS eddy.v9.Thing'), findings.join('\n'));
    assert.ok(rules.includes('RPC_STANDARD_NAME eddy.v9.Things.GetThing'), findings.join('\n'));
    assert.ok(rules.includes('ENUM_ZERO_VALUE_SUFFIX eddy.v9.Colour'), findings.join('\n'));
    assert.ok(rules.some((r) => r.startsWith('PACKAGE_DIRECTORY_MATCH')), findings.join('\n'));
    assert.ok(rules.some((r) => r.startsWith('INTERNAL_PACKAGE')), findings.join('\n'));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
