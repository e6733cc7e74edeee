// Nexmark q7 (jobs/nexmark/README.md) over 10 million generated events, results on the NATS
// subject nexmark.q7: `eddy build jobs/nexmark/q7.ts`, then `eddy submit`.
import { natsSubject } from '@eddy/sdk';
import { nexmarkJob } from './queries.ts';

export default nexmarkJob('q7', { source: { kind: 'generator', events: 10_000_000 }, sink: natsSubject('nexmark.q7') });
