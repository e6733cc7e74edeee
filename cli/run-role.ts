// How the long-running roles (coordinator, worker) live inside the eddy process: started once,
// closed on SIGTERM/SIGINT, then exit 0. A second signal while closing exits at once.
import { ensureError } from '../core/errors.ts';
import { CliError } from './errors.ts';
import type { Logger } from '../core/logger.ts';

/** What startCoordinator / startWorker resolve to. */
export interface Closeable {
  close(): Promise<void>;
}

/**
 * `eddy up` sets this to its own pid: a role whose supervisor is gone (killed with SIGKILL, so
 * it could not stop its children) closes itself instead of running on unsupervised.
 */
export const SUPERVISOR_PID_ENV = 'EDDY_SUPERVISOR_PID';
const SUPERVISOR_CHECK_INTERVAL_MS = 1_000;

export async function runRole(role: string, logger: Logger, start: () => Promise<Closeable>): Promise<void> {
  let component: Closeable;
  try {
    component = await start();
  } catch (e) {
    const err = ensureError(e);
    logger.error({ err }, `${role} failed to start`);
    throw new CliError(`${role} failed to start: ${err.message}`, { cause: e });
  }
  let closing = false;
  const shutdown = (reason: string): void => {
    if (closing) {
      logger.warn({ reason }, `${role} exiting without finishing close`);
      process.exit(1);
    }
    closing = true;
    logger.info({ reason }, `${role} stopping`);
    component.close().then(
      () => {
        logger.info(`${role} stopped`);
        process.exit(0);
      },
      (e: unknown) => {
        logger.error({ err: ensureError(e) }, `${role} close failed`);
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));

  const supervisorPid = Number(process.env[SUPERVISOR_PID_ENV]);
  if (Number.isSafeInteger(supervisorPid) && supervisorPid > 0) {
    const timer = setInterval(() => {
      // process.ppid is read live: once the supervisor dies this process is re-parented.
      if (process.ppid !== supervisorPid) {
        clearInterval(timer);
        shutdown('supervisor gone');
      }
    }, SUPERVISOR_CHECK_INTERVAL_MS);
    timer.unref();
  }
}
