import type uPlot from 'uplot';
import type { JobDetail } from '../../../coordinator/dashboard/api.ts';
import { axisStyle, Chart } from '../chart.tsx';
import { count, dateTime, duration, percent, rate, time } from '../format.ts';
import { JobGraph } from '../graph.tsx';

const SERIES_COLORS = ['#4e79a7', '#f28e2b', '#59a14f', '#e15759', '#b07aa1', '#76b7b2', '#edc948', '#9c755f'];

function RatesChart(props: { job: JobDetail; theme: string }) {
  const stageIds = props.job.stages.map((s) => s.stageId);
  const samples = props.job.rates;
  const data: uPlot.AlignedData = [samples.map((s) => s.atUnixMs / 1000), ...stageIds.map((id) => samples.map((s) => s.stages[id]?.in ?? null))];
  return (
    <Chart
      layoutKey={`${props.theme}:${stageIds.join(',')}`}
      testId="rates-chart"
      data={data}
      options={(width) => ({
        width,
        height: 220,
        legend: { show: true },
        cursor: { drag: { x: false, y: false } },
        scales: { x: { time: true }, y: { range: (_u, _min, max) => [0, Math.max(10, max * 1.1)] } },
        axes: [{ ...axisStyle() }, { ...axisStyle(), size: 60, values: (_u, vals) => vals.map((v) => count(v)) }],
        series: [{}, ...stageIds.map((id, i) => ({ label: `${id} in/s`, stroke: SERIES_COLORS[i % SERIES_COLORS.length], width: 2, value: (_u: uPlot, v: number | null) => (v == null ? '–' : rate(v)) }))],
      })}
    />
  );
}

function StagesTable(props: { job: JobDetail }) {
  return (
    <section class="card">
      <h2>Stages</h2>
      <table data-testid="stages-table">
        <thead>
          <tr>
            <th>stage</th>
            <th>kind</th>
            <th class="num">records in</th>
            <th class="num">records out</th>
            <th class="num">in/s</th>
            <th class="num">out/s</th>
            <th class="num">backpressure</th>
            <th class="num">dead letters</th>
          </tr>
        </thead>
        <tbody>
          {props.job.stages.map((s) => (
            <tr>
              <td>{s.stageId}</td>
              <td>{s.kind}</td>
              <td class="num">{count(s.recordsIn)}</td>
              <td class="num">{count(s.recordsOut)}</td>
              <td class="num">{rate(s.recordsInPerSecond)}</td>
              <td class="num">{rate(s.recordsOutPerSecond)}</td>
              <td class={s.backpressureRatio > 0.5 ? 'num warn' : 'num'}>{percent(s.backpressureRatio)}</td>
              <td class={s.deadLetters > 0 ? 'num warn' : 'num'}>{count(s.deadLetters)}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}

export function JobPage(props: { job: JobDetail; theme: string }) {
  const { job } = props;
  const f = job.lastFailure;
  return (
    <>
      <section class="facts">
        <div>
          <span class="label">uptime</span>
          <span>{job.uptimeMs ? duration(job.uptimeMs) : '–'}</span>
        </div>
        <div>
          <span class="label">records in</span>
          <span data-testid="job-records-in">{job.counted ? count(job.recordsIn) : '–'}</span>
        </div>
        <div>
          <span class="label">in/s</span>
          <span>{job.counted ? rate(job.recordsInPerSecond) : '–'}</span>
        </div>
        <div>
          <span class="label">epoch</span>
          <span>{job.epoch}</span>
        </div>
        <div>
          <span class="label">restarts</span>
          <span>{job.restarts}</span>
        </div>
        <div>
          <span class="label">key groups</span>
          <span>{job.maxParallelism}</span>
        </div>
      </section>
      <section class="card">
        <h2>Graph</h2>
        <JobGraph nodes={job.graph.nodes} edges={job.graph.edges} stages={job.stages} />
      </section>
      {!job.counted && <p class="muted" data-testid="rates-on-leader">Rates, stage counts and backpressure are counted by the leader: see its dashboard.</p>}
      {job.counted && (
        <section class="card">
          <h2>Records in per second</h2>
          <RatesChart job={job} theme={props.theme} />
        </section>
      )}
      {job.counted && <StagesTable job={job} />}
      <div class="two">
        <section class="card" data-testid="last-failure">
          <h2>Last failure</h2>
          {!f && <p class="muted">none</p>}
          {f && (
            <>
              <p class="error">{f.message}</p>
              <dl class="kv">
                <dt>when</dt>
                <dd>{dateTime(f.atUnixMs)}</dd>
                <dt>stage</dt>
                <dd>{f.stageId || '–'}</dd>
                <dt>key group</dt>
                <dd>{f.keyGroup >= 0 ? f.keyGroup : '–'}</dd>
                <dt>worker</dt>
                <dd>{f.workerId || '–'}</dd>
              </dl>
              {f.stack && <pre class="stack">{f.stack}</pre>}
            </>
          )}
        </section>
        <section class="card" data-testid="restarts">
          <h2>Restarts ({job.restarts})</h2>
          {job.restartHistory.length === 0 && <p class="muted">{job.restarts > 0 ? 'before this coordinator started' : 'none'}</p>}
          {job.restartHistory.length > 0 && (
            <table>
              <thead>
                <tr>
                  <th>time</th>
                  <th>cause</th>
                  <th>what</th>
                  <th>stage / key group</th>
                </tr>
              </thead>
              <tbody>
                {[...job.restartHistory].reverse().map((r) => (
                  <tr>
                    <td>{time(r.atUnixMs)}</td>
                    <td>
                      <span class="tag">{r.cause}</span>
                    </td>
                    <td class="wrap">{r.message}</td>
                    <td>
                      {r.stageId || '–'}
                      {r.keyGroup >= 0 ? ` / ${r.keyGroup}` : ''}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
        </section>
      </div>
    </>
  );
}
