// Preloaded with NODE_OPTIONS="--import <this file>" by bench/profile.ts (--cpu-prof is not allowed
// in NODE_OPTIONS): profiles the whole process with the inspector and writes
// $EDDY_CPU_PROFILE_DIR/<pid>.cpuprofile when it exits (process.exit, as Eddy's roles do on SIGTERM).
import { Session } from 'node:inspector';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

const dir = process.env.EDDY_CPU_PROFILE_DIR;
if (dir) {
  const session = new Session();
  session.connect();
  session.post('Profiler.enable');
  session.post('Profiler.setSamplingInterval', { interval: 500 });
  session.post('Profiler.start');
  // The in-thread session answers synchronously, so this completes inside the 'exit' handler.
  process.on('exit', () => {
    session.post('Profiler.stop', (err, result) => {
      if (!err) writeFileSync(join(dir, `${process.pid}.cpuprofile`), JSON.stringify(result.profile));
    });
  });
}
