// Nexmark q3 (jobs/nexmark/README.md) over 10 million generated events, results on the NATS
// subject nexmark.q3: `eddy build jobs/nexmark/q3.ts`, then `eddy submit`.
import { natsSubject } from '@eddy/sdk';
import { nexmarkJob } from './queries.ts';

export default nexmarkJob('q3', { source: { kind: 'generator', events: 10_000_000 }, sink: natsSubject('nexmark.q3') });
