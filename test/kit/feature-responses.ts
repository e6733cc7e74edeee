// GetFeaturesResponse fixtures shared by the tests of the workers' hand-written encoder
// (worker/query/feature-response-encoder.ts) and the client's hand-written reader
// (sdk/feature-response-decoder.ts): a feature value with defaults, and the generated codec's
// encoding of a response, the general path both are checked against.
import { loadGrpc } from '../../core/proto.ts';
import { toProtoValue, toTimestamp } from '../../core/proto-values.ts';
import type { EncodedFeatureValue } from '../../worker/query/feature-response-encoder.ts';

/** GetFeatures' definition: proto-loader's request and response codecs. */
export const getFeaturesMethod = loadGrpc().eddy.v2.FeatureService.service.GetFeatures;

/** A found `indicators` value with an event time, key group 17 and checkpoint 42, unless `more` says otherwise. */
export const featureValue = (value: unknown, more: Partial<EncodedFeatureValue> = {}): EncodedFeatureValue => ({
  feature: 'indicators',
  found: true,
  value,
  eventTimeMs: 1_733_000_000_123,
  keyGroup: 17,
  checkpointId: 42,
  uncommitted: false,
  beyondRetention: false,
  ...more,
});

/**
 * A response as the generated codec encodes it; `render` turns each found value into what
 * toProtoValue is given (the encoder's test passes it through JSON first, as the old path did).
 */
export function encodeWithGeneratedCodec(ids: readonly string[], values: EncodedFeatureValue[][], render: (value: unknown) => unknown = (v) => v): Buffer {
  return getFeaturesMethod.responseSerialize({
    rows: ids.map((entityId, r) => ({
      entityId,
      values: values[r]!.map((v) => ({
        feature: v.feature,
        found: v.found,
        value: v.found ? toProtoValue(render(v.value)) : null,
        eventTime: v.found && v.eventTimeMs !== undefined ? toTimestamp(v.eventTimeMs) : null,
        keyGroup: v.keyGroup,
        checkpointId: v.checkpointId,
        uncommitted: v.uncommitted,
        beyondRetention: v.beyondRetention,
      })),
    })),
  });
}
