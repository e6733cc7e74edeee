import uPlot from 'uplot';
import type { CheckpointEntry, CheckpointsView, RetainedCheckpoint } from '../../../coordinator/dashboard/api.ts';
import { axisStyle, Chart } from '../chart.tsx';
import { bytes, dateTime, duration, time } from '../format.ts';

const OK = '#4e79a7';
const SLOW = '#f28e2b';
const FAILED = '#e15759';

function Timeline(props: { view: CheckpointsView; theme: string }) {
  const h = props.view.history;
  // uPlot needs strictly increasing x: checkpoints start one after another, ms apart at least.
  const xs: number[] = [];
  for (const c of h) xs.push(Math.max(c.startedAtUnixMs / 1000, (xs[xs.length - 1] ?? 0) + 0.001));
  const pick = (want: (c: (typeof h)[number]) => boolean) => h.map((c) => (want(c) ? c.durationMs : null));
  const data: uPlot.AlignedData = [xs, pick((c) => c.status === 'COMPLETED' && !c.slow), pick((c) => c.slow), pick((c) => c.status === 'FAILED')];
  const bars = uPlot.paths.bars!({ size: [0.8, 14, 2] });
  const series = (label: string, color: string): uPlot.Series => ({ label, stroke: color, fill: color, paths: bars, points: { show: false }, value: (_u, v) => (v == null ? '–' : duration(v)) });
  return (
    <Chart
      layoutKey={props.theme}
      testId="checkpoint-timeline"
      attributes={{ completed: h.filter((c) => c.status === 'COMPLETED').length, slow: h.filter((c) => c.slow).length, failed: h.filter((c) => c.status === 'FAILED').length }}
      data={data}
      options={(width) => ({
        width,
        height: 240,
        cursor: { drag: { x: false, y: false } },
        scales: { x: { time: true }, y: { range: (_u, _min, max) => [0, Math.max(50, max * 1.15)] } },
        axes: [{ ...axisStyle() }, { ...axisStyle(), size: 64, values: (_u, vals) => vals.map((v) => duration(v)) }],
        series: [{}, series('completed', OK), series('slow', SLOW), series('failed', FAILED)],
      })}
    />
  );
}

/** The worker that acknowledged last, and when (the others are in the cell's title). */
function slowest(workers: CheckpointEntry['workers']): string {
  if (!workers || workers.length === 0) return '';
  const w = workers.reduce((a, b) => (b.ackMs > a.ackMs ? b : a));
  return workers.length === 1 ? `${w.workerId} (${duration(w.ackMs)})` : `${w.workerId} (${duration(w.ackMs)} of ${workers.length})`;
}

function Retained(props: { title: string; list: RetainedCheckpoint[]; testId: string }) {
  return (
    <section class="card" data-testid={props.testId}>
      <h2>{props.title}</h2>
      {props.list.length === 0 && <p class="muted">none</p>}
      {props.list.length > 0 && (
        <table>
          <thead>
            <tr>
              <th class="num">id</th>
              <th>completed</th>
              <th>path</th>
            </tr>
          </thead>
          <tbody>
            {[...props.list].reverse().map((c) => (
              <tr>
                <td class="num">{c.id}</td>
                <td>{dateTime(c.completedAtUnixMs)}</td>
                <td>
                  <code>{c.path}</code>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}

export function CheckpointsPage(props: { view: CheckpointsView; theme: string }) {
  const v = props.view;
  const recent = [...v.history].reverse().slice(0, 30);
  if (!v.kept) return <p class="muted" data-testid="checkpoints-on-leader">The leader keeps the checkpoint history, the retained checkpoints and the savepoints: see its dashboard.</p>;
  return (
    <>
      <section class="facts">
        <div>
          <span class="label">completed</span>
          <span data-testid="checkpoints-completed">{v.completed}</span>
        </div>
        <div>
          <span class="label">failed</span>
          <span class={v.failed > 0 ? 'warn' : ''}>{v.failed}</span>
        </div>
        <div>
          <span class="label">in flight</span>
          <span>{v.inFlightId || '–'}</span>
        </div>
        <div>
          <span class="label">median duration</span>
          <span>{v.medianDurationMs ? duration(v.medianDurationMs) : '–'}</span>
        </div>
        <div>
          <span class="label">interval</span>
          <span>{duration(v.intervalMs)}</span>
        </div>
      </section>
      {v.lastFailure && (
        <p class="error">
          last failure: {v.lastFailure}
        </p>
      )}
      <section class="card">
        <h2>Timeline</h2>
        <p class="muted small">
          Duration of each checkpoint at its start: <span class="swatch" style={{ background: OK }} /> completed <span class="swatch" style={{ background: SLOW }} /> slow (over twice the median){' '}
          <span class="swatch" style={{ background: FAILED }} /> failed
        </p>
        <Timeline view={v} theme={props.theme} />
      </section>
      <section class="card">
        <h2>Recent checkpoints</h2>
        <table data-testid="checkpoints-table">
          <thead>
            <tr>
              <th class="num">id</th>
              <th>status</th>
              <th>started</th>
              <th class="num">duration</th>
              <th class="num">bytes</th>
              <th class="num">epoch</th>
              <th>slowest worker</th>
              <th>why it failed</th>
            </tr>
          </thead>
          <tbody>
            {recent.map((c) => (
              <tr class={c.status === 'FAILED' ? 'row-failed' : c.slow ? 'row-slow' : ''} data-testid={`checkpoint-${c.id}`}>
                <td class="num">{c.id}</td>
                <td>{c.status === 'FAILED' ? <span class="tag tag-failed">failed</span> : c.slow ? <span class="tag tag-slow">slow</span> : <span class="tag">ok</span>}</td>
                <td>{time(c.startedAtUnixMs)}</td>
                <td class="num">{duration(c.durationMs)}</td>
                <td class="num">{bytes(c.bytes)}</td>
                <td class="num">{c.epoch}</td>
                <td title={(c.workers ?? []).map((w) => `${w.workerId}: acknowledged after ${duration(w.ackMs)}, ${bytes(w.bytes)}`).join('\n')}>{slowest(c.workers)}</td>
                <td class="wrap">{c.reason ?? ''}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </section>
      <div class="two">
        <Retained title="Retained checkpoints" list={v.retained} testId="retained" />
        <Retained title="Savepoints" list={v.savepoints} testId="savepoints" />
      </div>
    </>
  );
}
