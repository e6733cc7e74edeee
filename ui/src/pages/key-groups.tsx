import type { KeyGroupsView, WorkerView } from '../../../coordinator/dashboard/api.ts';
import { workerColor } from '../colors.ts';
import { bytes } from '../format.ts';

export function KeyGroupsPage(props: { view: KeyGroupsView; workers: WorkerView[] }) {
  const v = props.view;
  const moving = new Map(v.moving.map((m) => [m.keyGroup, m]));
  const columns = v.maxParallelism <= 128 ? 16 : v.maxParallelism <= 1024 ? 32 : 64;
  const alive = new Map(props.workers.map((w) => [w.id, w]));
  return (
    <>
      <section class="card">
        <h2>
          {v.maxParallelism} key groups, epoch {v.epoch}
          {v.moving.length > 0 && <span class="tag tag-slow" data-testid="moving-count">{v.moving.length} moving</span>}
        </h2>
        <div class="kg-grid" style={{ gridTemplateColumns: `repeat(${columns}, minmax(0, 1fr))` }} data-testid="kg-grid">
          {v.owners.map((owner, kg) => {
            const m = moving.get(kg);
            return (
              <div
                class={m ? 'kg moving' : 'kg'}
                // A moving key group is still the old owner's until the move's checkpoint completes.
                style={{ backgroundColor: workerColor(m ? m.from : owner), ...(m && { outlineColor: workerColor(m.to) }) }}
                title={m ? `key group ${kg}: moving ${m.from} → ${m.to}` : `key group ${kg}: ${owner || 'unassigned'}`}
                data-testid={`kg-${kg}`}
                data-owner={m ? m.from : owner}
                data-moving-to={m?.to}
              >
                {columns <= 16 ? kg : ''}
              </div>
            );
          })}
        </div>
        <p class="muted small">
          Coloured by the worker that owns the key group; striped with an outline: moving, in the old owner's colour, outlined in the new owner's, until the move's checkpoint completes.
        </p>
      </section>
      <section class="card">
        <h2>Owners</h2>
        <table data-testid="kg-owners">
          <thead>
            <tr>
              <th>worker</th>
              <th>state</th>
              <th class="num">key groups</th>
              <th>source splits</th>
              <th class="num">state size</th>
            </tr>
          </thead>
          <tbody>
            {v.workers.map((w) => (
              <tr>
                <td>
                  <span class="swatch" style={{ background: workerColor(w.id) }} /> {w.id}
                </td>
                <td>{alive.get(w.id)?.state ?? 'unknown'}</td>
                <td class="num">{w.keyGroups}</td>
                <td>{w.splits.join(', ') || '–'}</td>
                <td class="num">{bytes(w.stateBytes)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </section>
    </>
  );
}
