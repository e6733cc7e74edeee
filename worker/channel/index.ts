// Channels between stages, both halves of one protocol: the sending half (numbered batches, a
// bounded window of unacknowledged ones, resends), the receiving half (subscriptions per key
// group, fencing, signatures, sequence checks), the signed acknowledgement they share, publishing
// once per loop turn, and what a keyed stage derives from its inputs (which senders feed it, which
// input a sender is for, the watermark over its channels).
export { encodeAck, decodeAck } from './channel-acks.ts';
export { ChannelReceiver } from './channel-receiver.ts';
export type { ChannelReceiverOptions, ReceivedBatch } from './channel-receiver.ts';
export { ChannelSender } from './channel-sender.ts';
export { publishBatcher, type PublishBatcher } from './publish-batcher.ts';
export { ChannelWatermarks } from './channel-watermarks.ts';
export { BatchSigner } from './batch-signing.ts';
export { inputResolver, upstreamSenders } from './stage-inputs.ts';
export type { StageInputRef } from './stage-inputs.ts';
