// Nexmark q5 (jobs/nexmark/README.md) over 10 million generated events, results on the NATS
// subject nexmark.q5: `eddy build jobs/nexmark/q5.ts`, then `eddy submit`.
import { natsSubject } from '@eddy/sdk';
import { nexmarkJob } from './queries.ts';

export default nexmarkJob('q5', { source: { kind: 'generator', events: 10_000_000 }, sink: natsSubject('nexmark.q5') });
