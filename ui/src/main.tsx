// The dashboard's page: a hash router over the jobs list, a job (graph, checkpoints, key groups,
// features) and the workers, all fed by one Server-Sent Events stream (data.ts).
import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import 'uplot/dist/uPlot.min.css';
import './style.css';
import { useLive } from './data.ts';
import { JobsPage } from './pages/jobs.tsx';
import { JobPage } from './pages/job.tsx';
import { CheckpointsPage } from './pages/checkpoints.tsx';
import { KeyGroupsPage } from './pages/key-groups.tsx';
import { WorkersPage } from './pages/workers.tsx';
import { FeaturesPage } from './pages/features.tsx';
import { learnWorkers } from './colors.ts';

type Route =
  | { page: 'jobs' }
  | { page: 'workers' }
  | { page: 'job' | 'checkpoints' | 'key-groups' | 'features'; jobId: string };

function parseRoute(hash: string): Route {
  const parts = hash.replace(/^#\/?/, '').split('/').filter(Boolean).map(decodeURIComponent);
  if (parts[0] === 'workers') return { page: 'workers' };
  if (parts[0] === 'jobs' && parts[1]) {
    const sub = parts[2];
    if (sub === 'checkpoints' || sub === 'key-groups' || sub === 'features') return { page: sub, jobId: parts[1] };
    return { page: 'job', jobId: parts[1] };
  }
  return { page: 'jobs' };
}

export type Theme = 'light' | 'dark';

function initialTheme(): Theme {
  const saved = localStorage.getItem('eddy-theme');
  if (saved === 'light' || saved === 'dark') return saved;
  return matchMedia('(prefers-color-scheme: dark)').matches ? 'dark' : 'light';
}

function App() {
  const [route, setRoute] = useState(parseRoute(location.hash));
  const [theme, setTheme] = useState<Theme>(initialTheme);
  useEffect(() => {
    const onHash = () => setRoute(parseRoute(location.hash));
    addEventListener('hashchange', onHash);
    return () => removeEventListener('hashchange', onHash);
  }, []);
  // Set while rendering, not in an effect: the charts below read the scheme's colours in their
  // own effects, which run before this component's.
  document.documentElement.dataset.theme = theme;
  const jobId = 'jobId' in route ? route.jobId : undefined;
  const live = useLive(jobId);
  const update = live.update;
  if (update) learnWorkers(update.workers.map((w) => w.id));
  const job = jobId ? update?.jobs.find((j) => j.id === jobId) : undefined;
  const tab = (page: Route['page'], label: string) =>
    jobId && (
      <a href={`#/jobs/${encodeURIComponent(jobId)}${page === 'job' ? '' : `/${page}`}`} class={route.page === page ? 'tab active' : 'tab'} data-testid={`tab-${page}`}>
        {label}
      </a>
    );
  return (
    <>
      <header class="top">
        <a class="brand" href="#/jobs">
          eddy
        </a>
        <nav>
          <a href="#/jobs" class={route.page === 'jobs' ? 'active' : ''}>
            Jobs
          </a>
          <a href="#/workers" class={route.page === 'workers' ? 'active' : ''}>
            Workers
          </a>
        </nav>
        <span class="spacer" />
        <span class={live.connected ? 'conn ok' : 'conn down'} data-testid="connection" title={live.connected ? 'live: updates every second' : 'reconnecting…'}>
          {live.connected ? 'live' : 'offline'}
        </span>
        <button class="theme" type="button" onClick={() => {
          const next = theme === 'dark' ? 'light' : 'dark';
          localStorage.setItem('eddy-theme', next);
          setTheme(next);
        }} title="switch between the dark and the light scheme" data-testid="theme-toggle">
          {theme === 'dark' ? 'light' : 'dark'}
        </button>
      </header>
      {jobId && (
        <div class="job-bar">
          <h1>
            {jobId} {job && <span class={`state state-${job.state}`}>{job.state}</span>}
          </h1>
          <div class="tabs">
            {tab('job', 'Graph')}
            {tab('checkpoints', 'Checkpoints')}
            {tab('key-groups', 'Key groups')}
            {tab('features', 'Features')}
          </div>
        </div>
      )}
      <main>
        {update?.cluster.role === 'STANDBY' && (
          <p class="banner" data-testid="standby-banner">
            This coordinator stands by: it shows the cluster's jobs as the leader publishes them (state, graph, key groups, feature lookups);
            rates, checkpoints and restarts are kept by the leader
            {update.cluster.leader ? (
              <>
                {' '}at <code>{update.cluster.leader.address}</code>
                {update.cluster.leader.dashboardUrl && (
                  <>
                    {': '}
                    <a href={`${update.cluster.leader.dashboardUrl}${location.hash}`} data-testid="leader-link">
                      open the leader's dashboard
                    </a>
                  </>
                )}
              </>
            ) : (
              ' (no leader is known right now)'
            )}
            .
          </p>
        )}
        {live.error && <p class="error" data-testid="error">{live.error}</p>}
        {!update && !live.error && <p class="muted">connecting…</p>}
        {update && route.page === 'jobs' && <JobsPage jobs={update.jobs} />}
        {update && route.page === 'workers' && <WorkersPage workers={update.workers} />}
        {update?.job && route.page === 'job' && <JobPage job={update.job} theme={theme} />}
        {update?.checkpoints && route.page === 'checkpoints' && <CheckpointsPage view={update.checkpoints} theme={theme} />}
        {update?.keyGroups && route.page === 'key-groups' && <KeyGroupsPage view={update.keyGroups} workers={update.workers} />}
        {update?.job && route.page === 'features' && <FeaturesPage job={update.job} />}
      </main>
    </>
  );
}

render(<App />, document.getElementById('app')!);
