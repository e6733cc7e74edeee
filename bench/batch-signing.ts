// The cost of signed record batches (worker/channel/batch-signing.ts): HMAC-SHA256 of a batch at
// the sender and its verification at the receiver, per batch and per record, beside what encoding
// and decoding the same batch costs; and of signed channel acknowledgements (one entry here; a
// receiver sends one per sender and loop turn, covering every key group it took batches of:
// worker/channel/channel-acks.ts). In process and in CPU time (a busy machine disturbs it little).
// `node --import tsx bench/batch-signing.ts`.
import { randomBytes } from 'node:crypto';
import { BatchKind, decodeHeader, decodeRecords, encodeBatch, type Record } from '../core/record-batch.ts';
import { BatchSigner, TAG_BYTES } from '../worker/channel/batch-signing.ts';
import { decodeAck, encodeAck } from '../worker/channel/channel-acks.ts';
import { RUNS, isMain, machineLine, median, runMain } from './lib.ts';

/** CPU µs (user + system, this process) per call of fn over `calls` calls. */
function usPerCall(calls: number, fn: () => void): number {
  const t0 = process.cpuUsage();
  for (let i = 0; i < calls; i++) fn();
  const used = process.cpuUsage(t0);
  return (used.user + used.system) / calls;
}

export interface SigningCost {
  records: number;
  bytes: number;
  encodeUs: number;
  decodeUs: number;
  signUs: number;
  verifyUs: number;
}

export function batchSigningBenchmark(records: number): SigningCost {
  // customer-experience-like events: ~120 B of JSON each.
  const list: Record[] = Array.from({ length: records }, (_, i) => ({ key: `cust-${i % 977}`, timestamp: 1_733_400_000_000 + i, value: { customerId: `cust-${i % 977}`, kind: 'page_view', page: `/p/${i % 50}`, latencyMs: i % 300, ok: i % 13 !== 0 }, origin: i * 8192 + 3 }));
  const batch = { kind: BatchKind.DATA, sequence: 42, keyGroup: 17, sender: 'split3@e12', records: list };
  const signer = new BatchSigner(randomBytes(32));
  const signed = signer.sign(encodeBatch(batch, TAG_BYTES));
  const plain = encodeBatch(batch);
  const calls = Math.max(200, Math.round(400_000 / records));
  const runs = { encodeUs: [] as number[], decodeUs: [] as number[], signUs: [] as number[], verifyUs: [] as number[] };
  for (let r = 0; r < RUNS; r++) {
    runs.encodeUs.push(usPerCall(calls, () => encodeBatch(batch)));
    runs.decodeUs.push(usPerCall(calls, () => decodeRecords(plain, decodeHeader(plain))));
    runs.signUs.push(usPerCall(calls, () => signer.sign(signed)));
    runs.verifyUs.push(usPerCall(calls, () => signer.verify(signed)));
  }
  return { records, bytes: signed.length, encodeUs: median(runs.encodeUs), decodeUs: median(runs.decodeUs), signUs: median(runs.signUs), verifyUs: median(runs.verifyUs) };
}

export interface AckCost {
  encodeUs: number;
  decodeUs: number;
  signedEncodeUs: number;
  signedDecodeUs: number;
}

/** An acknowledgement encoded and decoded, unsigned and signed. */
export function ackSigningBenchmark(): AckCost {
  const signer = new BatchSigner(randomBytes(32));
  const sender = 'indicator-state@worker-1@e12';
  const plain = encodeAck(17, 42, sender, undefined);
  const signed = encodeAck(17, 42, sender, signer);
  const calls = 200_000;
  const runs = { encodeUs: [] as number[], decodeUs: [] as number[], signedEncodeUs: [] as number[], signedDecodeUs: [] as number[] };
  for (let r = 0; r < RUNS; r++) {
    runs.encodeUs.push(usPerCall(calls, () => encodeAck(17, 42, sender, undefined)));
    runs.decodeUs.push(usPerCall(calls, () => decodeAck(plain, sender, undefined)));
    runs.signedEncodeUs.push(usPerCall(calls, () => encodeAck(17, 42, sender, signer)));
    runs.signedDecodeUs.push(usPerCall(calls, () => decodeAck(signed, sender, signer)));
  }
  return { encodeUs: median(runs.encodeUs), decodeUs: median(runs.decodeUs), signedEncodeUs: median(runs.signedEncodeUs), signedDecodeUs: median(runs.signedDecodeUs) };
}

if (isMain(import.meta.url)) {
  runMain(async () => {
    console.log(machineLine());
    for (const n of [1, 16, 128, 512]) {
      const c = batchSigningBenchmark(n);
      console.log(
        `batch of ${n} records (${c.bytes} B): encode ${c.encodeUs.toFixed(1)} µs, decode ${c.decodeUs.toFixed(1)} µs; ` +
          `HMAC sign ${c.signUs.toFixed(1)} µs, verify ${c.verifyUs.toFixed(1)} µs ` +
          `(${(((c.signUs + c.verifyUs) * 1000) / n).toFixed(0)} ns per record, ${(((c.signUs + c.verifyUs) / (c.encodeUs + c.decodeUs)) * 100).toFixed(0)} % of encode + decode)`,
      );
    }
    const a = ackSigningBenchmark();
    console.log(`channel ack: encode ${a.encodeUs.toFixed(2)} µs, decode ${a.decodeUs.toFixed(2)} µs unsigned; signed: encode ${a.signedEncodeUs.toFixed(2)} µs, decode and verify ${a.signedDecodeUs.toFixed(2)} µs`);
  });
}
