// The page's connection to the coordinator: one Server-Sent Events stream of updates
// (/api/events) while a page is open, and plain JSON requests for lookups.
import { useEffect, useState } from 'preact/hooks';
import type { ApiError, DashboardUpdate } from '../../coordinator/dashboard/api.ts';

export type { DashboardUpdate } from '../../coordinator/dashboard/api.ts';

export interface Live {
  update: DashboardUpdate | undefined;
  /** false while the stream is down (EventSource reconnects by itself). */
  connected: boolean;
  /** What the server said when it refused the stream (an unknown job). */
  error: string | undefined;
}

/** Updates every second; with a job id, that job's detail, checkpoints and key groups too. */
export function useLive(jobId: string | undefined): Live {
  const [live, setLive] = useState<Live>({ update: undefined, connected: false, error: undefined });
  useEffect(() => {
    const url = `/api/events${jobId ? `?job=${encodeURIComponent(jobId)}` : ''}`;
    const source = new EventSource(url);
    source.addEventListener('update', (e) => {
      const update = JSON.parse((e as MessageEvent<string>).data) as DashboardUpdate;
      setLive({ update, connected: true, error: undefined });
    });
    source.addEventListener('error', () => {
      setLive((l) => ({ ...l, connected: false }));
      // A refused stream (404 for an unknown job) is not retried by EventSource: say why.
      if (source.readyState === EventSource.CLOSED) {
        void fetch(url).then(async (r) => {
          if (!r.ok) {
            const body = (await r.json().catch(() => undefined)) as ApiError | undefined;
            setLive((l) => ({ ...l, error: body?.error.message ?? `HTTP ${r.status}` }));
          }
        });
      }
    });
    return () => source.close();
  }, [jobId]);
  return live;
}

export class ApiRequestError extends Error {}

export async function getJson<T>(url: string): Promise<T> {
  const r = await fetch(url, { headers: { Accept: 'application/json' } });
  const body = (await r.json()) as T | ApiError;
  if (!r.ok) throw new ApiRequestError((body as ApiError).error?.message ?? `HTTP ${r.status}`);
  return body as T;
}
