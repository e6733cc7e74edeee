import type { JobSummary } from '../../../coordinator/dashboard/api.ts';
import { count, dateTime, duration, rate } from '../format.ts';

export function JobsPage(props: { jobs: JobSummary[] }) {
  if (props.jobs.length === 0) return <p class="muted">No jobs yet: submit one with <code>eddy submit</code>.</p>;
  return (
    <section class="card">
      <h2>Jobs</h2>
      <table data-testid="jobs-table">
        <thead>
          <tr>
            <th>job</th>
            <th>state</th>
            <th>submitted</th>
            <th class="num">uptime</th>
            <th class="num">restarts</th>
            <th class="num">records in</th>
            <th class="num">in/s</th>
            <th class="num">epoch</th>
          </tr>
        </thead>
        <tbody>
          {props.jobs.map((j) => (
            <tr data-testid={`job-row-${j.id}`}>
              <td>
                <a href={`#/jobs/${encodeURIComponent(j.id)}`}>{j.id}</a>
              </td>
              <td>
                <span class={`state state-${j.state}`}>{j.state}</span>
              </td>
              <td>{dateTime(j.submittedAtUnixMs)}</td>
              <td class="num">{j.uptimeMs ? duration(j.uptimeMs) : '–'}</td>
              <td class="num">{j.restarts}</td>
              <td class="num">{j.counted ? count(j.recordsIn) : '–'}</td>
              <td class="num">{j.counted ? rate(j.recordsInPerSecond) : '–'}</td>
              <td class="num">{j.epoch}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}
