// The feature lookup: type an entity id, see every feature of the job for it — LATEST and
// COMMITTED, with event time and checkpoint — and, for the features that keep history, the value
// as of an event time.
import { useState } from 'preact/hooks';
import type { EntityFeature, EntityLookup, FeatureValueView, JobDetail } from '../../../coordinator/dashboard/api.ts';
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
    <div class="answer" data-testid={props.testId}>
      <h3>
        {props.title} {v.uncommitted && <span class="tag tag-slow">uncommitted</span>}
      </h3>
      {props.note && <p class="muted small">{props.note}</p>}
      {v.beyondRetention && <p class="warn">older than the history keeps</p>}
      {!v.found && !v.beyondRetention && <p class="muted" data-testid={`${props.testId}-absent`}>not found</p>}
      {v.found && <pre class="value" data-testid={`${props.testId}-value`}>{pretty(v.valueJson)}</pre>}
      <dl class="kv">
        <dt>event time</dt>
        <dd>{v.eventTimeUnixMs != null ? dateTime(v.eventTimeUnixMs) : '–'}</dd>
        <dt>checkpoint</dt>
        <dd>{v.checkpointId || '–'}</dd>
        <dt>key group</dt>
        <dd>{v.keyGroup}</dd>
      </dl>
    </div>
  );
}

function FeatureCard(props: { f: EntityFeature; history: number | undefined; asked: boolean }) {
  const { f } = props;
  const id = `feature-${f.feature}`;
  return (
    <section class="card" data-testid={id}>
      <h2>
        {f.feature} <span class="muted small">stage {f.stageId}</span>
        {props.history !== undefined && <span class="tag" title="versions kept for as-of reads">history {duration(props.history)}</span>}
      </h2>
      <div class={f.asOf ? 'three' : 'two'}>
        <Answer title="LATEST" value={f.latest} testId={`${id}-latest`} note="everything processed so far" />
        <Answer title="COMMITTED" value={f.committed} testId={`${id}-committed`} note="as of the last completed checkpoint" />
        {f.asOf && <Answer title={`as of ${new Date(f.asOf.asOfUnixMs).toISOString()}`} value={f.asOf} testId={`${id}-asof`} />}
      </div>
      {props.asked && props.history === undefined && <p class="muted small">This feature keeps no history: no as-of answer.</p>}
    </section>
  );
}

export function FeaturesPage(props: { job: JobDetail }) {
  const features = props.job.features;
  const [entity, setEntity] = useState('');
  const [asOf, setAsOf] = useState('');
  const [result, setResult] = useState<EntityLookup | undefined>();
  const [error, setError] = useState<string | undefined>();
  const [busy, setBusy] = useState(false);
  if (features.length === 0) return <p class="muted">This job declares no features.</p>;
  const anyHistory = features.some((f) => f.historyRetentionMs);
  const lookUp = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError(undefined);
    try {
      const q = new URLSearchParams({ entity });
      if (asOf && anyHistory) q.set('asOf', /^\d+$/.test(asOf) ? asOf : new Date(asOf).toISOString());
      setResult(await getJson<EntityLookup>(`/api/jobs/${encodeURIComponent(props.job.id)}/features?${q}`));
    } catch (err) {
      setResult(undefined);
      setError((err as Error).message);
    } finally {
      setBusy(false);
    }
  };
  const history = new Map(features.map((f) => [f.name, f.historyRetentionMs]));
  return (
    <>
      <section class="card">
        <h2>Look up an entity</h2>
        <p class="muted small">
          Every feature of the job for one entity id: {features.map((f) => f.name).join(', ')}.
        </p>
        <form class="lookup" onSubmit={lookUp}>
          <label>
            entity id
            <input value={entity} onInput={(e) => setEntity((e.target as HTMLInputElement).value)} placeholder="cust-0001" required data-testid="entity-input" />
          </label>
          <label title={anyHistory ? 'for the features that keep history' : 'no feature of this job keeps history'}>
            as of (event time)
            <input type="datetime-local" step="1" value={asOf} disabled={!anyHistory} onInput={(e) => setAsOf((e.target as HTMLInputElement).value)} data-testid="asof-input" />
          </label>
          <button type="submit" disabled={busy || entity === ''} data-testid="lookup-button">
            {busy ? 'asking…' : 'Look up'}
          </button>
        </form>
        {error && <p class="error" data-testid="lookup-error">{error}</p>}
      </section>
      {result && (
        <div data-testid="lookup-result" data-entity={result.entityId}>
          {result.features.map((f) => (
            <FeatureCard f={f} history={history.get(f.feature)} asked={asOf !== ''} />
          ))}
        </div>
      )}
    </>
  );
}
