// Nexmark q8 (jobs/nexmark/README.md) over 10 million generated events, results on the NATS
// subject nexmark.q8: `eddy build jobs/nexmark/q8.ts`, then `eddy submit`.
import { natsSubject } from '@eddy/sdk';
import { nexmarkJob } from './queries.ts';

export default nexmarkJob('q8', { source: { kind: 'generator', events: 10_000_000 }, sink: natsSubject('nexmark.q8') });
