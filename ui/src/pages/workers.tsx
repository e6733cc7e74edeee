import type { WorkerView } from '../../../coordinator/dashboard/api.ts';
import { workerColor } from '../colors.ts';
import { bytes, dateTime, duration } from '../format.ts';

export function WorkersPage(props: { workers: WorkerView[] }) {
  if (props.workers.length === 0) return <p class="muted">No workers have registered.</p>;
  return (
    <section class="card">
      <h2>Workers</h2>
      <table data-testid="workers-table">
        <thead>
          <tr>
            <th>worker</th>
            <th>state</th>
            <th>host / pid</th>
            <th>registered</th>
            <th class="num">heartbeat age</th>
            <th class="num">key groups</th>
            <th class="num">state size</th>
            <th class="num">RSS</th>
            <th class="num">CPU</th>
            <th>jobs</th>
          </tr>
        </thead>
        <tbody>
          {props.workers.map((w) => (
            <tr data-testid={`worker-row-${w.id}`}>
              <td>
                <span class="swatch" style={{ background: workerColor(w.id) }} /> {w.id}
              </td>
              <td>
                <span class={`state state-${w.state}`}>{w.state}</span>
              </td>
              <td>
                {w.host || '–'} / {w.pid || '–'}
              </td>
              <td>{dateTime(w.registeredAtUnixMs)}</td>
              <td class={w.heartbeatAgeMs > 2000 ? 'num warn' : 'num'}>{duration(w.heartbeatAgeMs)}</td>
              <td class="num">{w.jobs.reduce((n, j) => n + j.keyGroups, 0)}</td>
              <td class="num">{bytes(w.stateBytes)}</td>
              <td class="num" data-testid={`rss-${w.id}`}>{w.rssBytes ? bytes(w.rssBytes) : '–'}</td>
              <td class="num">{w.rssBytes ? `${Math.round(w.cpuCores * 100)}%` : '–'}</td>
              <td>{w.jobs.map((j) => `${j.jobId} (${j.keyGroups} kg, ${j.splits} splits)`).join(', ') || '–'}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}
