export { DashboardServer, allowLoopback, DEFAULT_UI_DIR, type Authorize, type AuthDecision, type DashboardServerOptions } from './http-server.ts';
export { JobHistory } from './job-history.ts';
export { dashboardAuthorization } from './authorize.ts';
export type * from './api.ts';
