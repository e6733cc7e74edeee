import { useState } from 'preact/hooks';
import type { FeatureLookup, FeatureValueView, JobDetail } from '../../../coordinator/dashboard/api.ts';
import { getJson } from '../data.ts';
import { dateTime, duration } from '../format.ts';

function pretty(json: string): string {
  try {
    return JSON.stringify(JSON.parse(json), null, 2);
  } catch {
    return json;
  }
}

function Answer(props: { title: string; value: FeatureValueView; testId: string; note?: string }) {
  const v = props.value;
  return (
    <section class="card answer" data-testid={props.testId}>
      <h2>
        {props.title} {v.uncommitted && <span class="tag tag-slow">uncommitted</span>}
      </h2>
      {props.note && <p class="muted small">{props.note}</p>}
      {v.beyondRetention && <p class="warn">older than the history keeps</p>}
      {!v.found && !v.beyondRetention && <p class="muted">not found</p>}
      {v.found && <pre class="value" data-testid={`${props.testId}-value`}>{pretty(v.valueJson)}</pre>}
      <dl class="kv">
        <dt>event time</dt>
        <dd>{v.eventTimeUnixMs != null ? dateTime(v.eventTimeUnixMs) : '–'}</dd>
        <dt>checkpoint</dt>
        <dd>{v.checkpointId || '–'}</dd>
        <dt>key group</dt>
        <dd>{v.keyGroup}</dd>
      </dl>
    </section>
  );
}

export function FeaturesPage(props: { job: JobDetail }) {
  const features = props.job.features;
  const [feature, setFeature] = useState(features[0]?.name ?? '');
  const [entity, setEntity] = useState('');
  const [asOf, setAsOf] = useState('');
  const [result, setResult] = useState<FeatureLookup | undefined>();
  const [error, setError] = useState<string | undefined>();
  const [busy, setBusy] = useState(false);
  const spec = features.find((f) => f.name === feature);
  if (features.length === 0) return <p class="muted">This job declares no features.</p>;
  const lookUp = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError(undefined);
    try {
      const q = new URLSearchParams({ entity });
      if (asOf && spec?.historyRetentionMs) q.set('asOf', /^\d+$/.test(asOf) ? asOf : new Date(asOf).toISOString());
      setResult(await getJson<FeatureLookup>(`/api/jobs/${encodeURIComponent(props.job.id)}/features/${encodeURIComponent(feature)}?${q}`));
    } catch (err) {
      setResult(undefined);
      setError((err as Error).message);
    } finally {
      setBusy(false);
    }
  };
  return (
    <>
      <section class="card">
        <h2>Look up an entity</h2>
        <form class="lookup" onSubmit={lookUp}>
          <label>
            feature
            <select value={feature} onChange={(e) => setFeature((e.target as HTMLSelectElement).value)} data-testid="feature-select">
              {features.map((f) => (
                <option value={f.name}>
                  {f.name} ({f.stageId})
                </option>
              ))}
            </select>
          </label>
          <label>
            entity id
            <input value={entity} onInput={(e) => setEntity((e.target as HTMLInputElement).value)} placeholder="cust-0001" required data-testid="entity-input" />
          </label>
          <label title={spec?.historyRetentionMs ? `history kept for ${duration(spec.historyRetentionMs)} of event time` : 'this feature keeps no history'}>
            as of (event time)
            <input type="datetime-local" step="1" value={asOf} disabled={!spec?.historyRetentionMs} onInput={(e) => setAsOf((e.target as HTMLInputElement).value)} data-testid="asof-input" />
          </label>
          <button type="submit" disabled={busy || entity === ''} data-testid="lookup-button">
            {busy ? 'asking…' : 'Look up'}
          </button>
        </form>
        {error && <p class="error" data-testid="lookup-error">{error}</p>}
      </section>
      {result && (
        <div class={result.asOf ? 'three' : 'two'}>
          <Answer title="LATEST" value={result.latest} testId="answer-latest" note="everything processed so far" />
          <Answer title="COMMITTED" value={result.committed} testId="answer-committed" note="as of the last completed checkpoint" />
          {result.asOf && <Answer title={`as of ${new Date(result.asOf.asOfUnixMs).toISOString()}`} value={result.asOf} testId="answer-asof" />}
        </div>
      )}
    </>
  );
}
