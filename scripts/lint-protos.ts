// Checks the .proto files under proto/ with the rules of buf's STANDARD lint that matter to the
// clients of other languages (buf itself is not installable here). Run by `make test`
// (`make lint-protos`); exits 1 and prints every finding.
//
// - PACKAGE_DIRECTORY_MATCH: a file's package is its directory (proto/eddy/v2 → eddy.v2).
// - PACKAGE_VERSION_SUFFIX: Eddy's packages end in a version (v1, v2).
// - Internal protocols (a package with a "control" part) stay out of the public packages.
// - COMMENTS: in public packages every service, rpc, message, field, oneof, enum and enum value
//   has a leading comment.
// - ENUM_ZERO_VALUE_SUFFIX / ENUM_VALUE_PREFIX: the zero value is <ENUM>_UNSPECIFIED and every
//   value starts with <ENUM>_.
// - RPC_REQUEST_RESPONSE_UNIQUE / RPC_REQUEST_STANDARD_NAME / RPC_RESPONSE_STANDARD_NAME: rpc X
//   takes XRequest and returns XResponse, used by no other rpc.
//
// eddy.v1 predates these rules: what it breaks is listed in V1_EXCEPTIONS (changing it would break
// its clients; eddy.v2 is where a fixed shape goes). A new exception needs a reason here.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';

const PROTO_DIR = fileURLToPath(new URL('../proto/', import.meta.url));

/** Findings accepted in eddy.v1, by rule and element: its wire shape is frozen for existing clients. */
const V1_EXCEPTIONS = new Set([
  'ENUM_ZERO_VALUE_SUFFIX eddy.v1.View',
  'ENUM_VALUE_PREFIX eddy.v1.View',
  'RPC_STANDARD_NAME eddy.v1.FeatureService.Get',
  'RPC_STANDARD_NAME eddy.v1.FeatureService.BatchGet',
  'RPC_STANDARD_NAME eddy.v1.FeatureService.WatchFeatures',
  'RPC_STANDARD_NAME eddy.v1.JobService.GetJob',
  'RPC_STANDARD_NAME eddy.v1.JobService.CancelJob',
  'RPC_REQUEST_RESPONSE_UNIQUE eddy.v1.JobService.CancelJob',
]);

/** Packages not written here (vendored from googleapis) are not linted for comments or names. */
const VENDORED = /^google\./;

function protoFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const full = path.join(dir, name);
    if (statSync(full).isDirectory()) return name === 'gen' && dir === PROTO_DIR.replace(/\/$/, '') ? [] : protoFiles(full);
    return name.endsWith('.proto') ? [full] : [];
  });
}

const upperSnake = (name: string) => name.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase();
const hasComment = (c: string | null | undefined) => typeof c === 'string' && c.trim().length > 0;

export function lintProtos(root = PROTO_DIR): string[] {
  const findings: string[] = [];
  const rpcUses = new Map<string, string[]>();
  const report = (rule: string, element: string, message: string) => {
    if (V1_EXCEPTIONS.has(`${rule} ${element}`)) return;
    findings.push(`${rule} ${element}: ${message}`);
  };
  for (const file of protoFiles(root.replace(/\/$/, ''))) {
    const relative = path.relative(root, file);
    const parsed = protobuf.parse(readFileSync(file, 'utf8'), { keepCase: true, alternateCommentMode: true });
    const pkg = parsed.package ?? '';
    const dirPackage = path.dirname(relative).split(path.sep).join('.');
    if (pkg !== dirPackage) report('PACKAGE_DIRECTORY_MATCH', relative, `package ${pkg} is not its directory's (${dirPackage})`);
    if (VENDORED.test(pkg)) continue;
    if (!/\.v\d+$/.test(pkg)) report('PACKAGE_VERSION_SUFFIX', relative, `package ${pkg} has no version suffix`);
    const internal = pkg.split('.').includes('control');
    if (internal) {
      if (/^eddy\.v\d+(\.|$)/.test(pkg)) report('INTERNAL_PACKAGE', relative, `internal package ${pkg} inside a public one`);
      continue;
    }
    const ns = parsed.root.lookup(pkg);
    if (!(ns instanceof protobuf.Namespace)) continue;
    const visit = (obj: protobuf.ReflectionObject) => {
      const name = obj.fullName.replace(/^\./, '');
      if (obj instanceof protobuf.Service) {
        if (!hasComment(obj.comment)) report('COMMENTS', name, 'service without a comment');
        for (const method of obj.methodsArray) {
          const m = `${name}.${method.name}`;
          if (!hasComment(method.comment)) report('COMMENTS', m, 'rpc without a comment');
          const standard = method.requestType === `${method.name}Request` && method.responseType === `${method.name}Response`;
          if (!standard) report('RPC_STANDARD_NAME', m, `takes ${method.requestType} and returns ${method.responseType}; expected ${method.name}Request and ${method.name}Response`);
          for (const t of [method.requestType, method.responseType]) rpcUses.set(`${pkg}.${t}`, [...(rpcUses.get(`${pkg}.${t}`) ?? []), m]);
        }
      } else if (obj instanceof protobuf.Type) {
        if (!hasComment(obj.comment)) report('COMMENTS', name, 'message without a comment');
        for (const field of obj.fieldsArray) if (!hasComment(field.comment)) report('COMMENTS', `${name}.${field.name}`, 'field without a comment');
        for (const oneof of obj.oneofsArray) if (!hasComment(oneof.comment)) report('COMMENTS', `${name}.${oneof.name}`, 'oneof without a comment');
      } else if (obj instanceof protobuf.Enum) {
        if (!hasComment(obj.comment)) report('COMMENTS', name, 'enum without a comment');
        const prefix = `${upperSnake(obj.name)}_`;
        for (const [value, number] of Object.entries(obj.values)) {
          if (!hasComment(obj.comments[value])) report('COMMENTS', `${name}.${value}`, 'enum value without a comment');
          if (!value.startsWith(prefix)) report('ENUM_VALUE_PREFIX', name, `${value} does not start with ${prefix}`);
          if (number === 0 && value !== `${prefix}UNSPECIFIED`) report('ENUM_ZERO_VALUE_SUFFIX', name, `zero value ${value}; expected ${prefix}UNSPECIFIED`);
        }
      }
      if (obj instanceof protobuf.Namespace) for (const nested of obj.nestedArray) visit(nested);
    };
    for (const nested of ns.nestedArray) visit(nested);
  }
  for (const [type, rpcs] of rpcUses) {
    if (rpcs.length > 1) for (const rpc of rpcs.slice(1)) report('RPC_REQUEST_RESPONSE_UNIQUE', rpc, `${type} is also used by ${rpcs[0]}`);
  }
  return findings;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const findings = lintProtos();
  if (findings.length > 0) {
    process.stderr.write(`${findings.join('\n')}\nlint-protos: ${findings.length} finding(s)\n`);
    process.exit(1);
  }
  process.stdout.write('lint-protos: ok\n');
}
