// Nexmark q0 (jobs/nexmark/README.md) over 10 million generated events, results on the NATS
// subject nexmark.q0: `eddy build jobs/nexmark/q0.ts`, then `eddy submit`.
import { natsSubject } from '@eddy/sdk';
import { nexmarkJob } from './queries.ts';

export default nexmarkJob('q0', { source: { kind: 'generator', events: 10_000_000 }, sink: natsSubject('nexmark.q0') });
