// A progress bar on stderr when it is a terminal, nothing otherwise (logs and pipes stay clean).
import cliProgress from 'cli-progress';

export interface Progress {
  update(done: number): void;
  stop(): void;
}

const NO_PROGRESS: Progress = { update: () => {}, stop: () => {} };

export function startProgress(label: string, total: number, unit: string): Progress {
  if (!process.stderr.isTTY || total <= 0) return NO_PROGRESS;
  const bar = new cliProgress.SingleBar(
    {
      format: `${label} [{bar}] {percentage}% | {value}/{total} ${unit} | {rate}/s | {duration_formatted}`,
      hideCursor: true,
      clearOnComplete: true,
      fps: 10,
    },
    cliProgress.Presets.shades_classic,
  );
  const startedAt = performance.now();
  bar.start(total, 0, { rate: 0 });
  let stopped = false;
  return {
    update(done) {
      if (stopped) return;
      const seconds = (performance.now() - startedAt) / 1000;
      bar.update(Math.min(done, total), { rate: seconds > 0 ? Math.round(done / seconds) : 0 });
    },
    stop() {
      if (stopped) return;
      stopped = true;
      bar.stop();
    },
  };
}
