// Branded identifiers, parsed where they enter the system (gRPC, NATS, CLI) so that a
// worker id can never be passed where a job id is expected.

declare const brand: unique symbol;
type Brand<T, B extends string> = T & { readonly [brand]: B };

export type JobId = Brand<string, 'JobId'>;
export type WorkerId = Brand<string, 'WorkerId'>;
export type StageId = Brand<string, 'StageId'>;
export type Epoch = Brand<number, 'Epoch'>;

// Ids become NATS subject tokens and object-store path segments: keep them to a safe alphabet.
const ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/;

function parseId<T>(kind: string, raw: unknown): T {
  if (typeof raw !== 'string' || !ID_PATTERN.test(raw)) {
    throw new TypeError(`invalid ${kind} ${JSON.stringify(raw)}: expected 1-64 of [A-Za-z0-9_-], starting with a letter or digit`);
  }
  return raw as T;
}

export const parseJobId = (raw: unknown): JobId => parseId<JobId>('job id', raw);
export const parseWorkerId = (raw: unknown): WorkerId => parseId<WorkerId>('worker id', raw);
export const parseStageId = (raw: unknown): StageId => parseId<StageId>('stage id', raw);
export const isValidId = (raw: unknown): boolean => typeof raw === 'string' && ID_PATTERN.test(raw);

export function parseEpoch(raw: unknown): Epoch {
  const n = typeof raw === 'string' ? Number(raw) : raw;
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0) throw new TypeError(`invalid epoch ${String(raw)}`);
  return n as Epoch;
}
