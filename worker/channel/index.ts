// Channels between stages: the sending half (numbered batches, a bounded window of
// unacknowledged ones, acknowledgements) and what a keyed stage derives from its inputs (which
// senders feed it, which input a sender is for, the watermark over its channels). The receiving
// half is the keyed task (worker/task/keyed-task.ts), which acknowledges with encodeAck (channel-acks.ts, the one codec of acknowledgements).
export { ACK_BYTES, ackKeyGroup, ackSequence, encodeAck } from './channel-acks.ts';
export { ChannelSender } from './channel-sender.ts';
export { ChannelWatermarks } from './channel-watermarks.ts';
export { BatchSigner } from './batch-signing.ts';
export { inputResolver, upstreamSenders } from './stage-inputs.ts';
export type { StageInputRef } from './stage-inputs.ts';
