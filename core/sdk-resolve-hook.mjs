// Module resolve hook: job bundles import '@eddy/sdk' as an external; the runtime maps it to
// its own sdk module so the bundle and the worker share one instance of it.
let sdkUrl;

export function initialize(data) {
  sdkUrl = data.sdkUrl;
}

export async function resolve(specifier, context, next) {
  // Delegate to the next resolver (tsx's, when running from source) so it loads the file too.
  if (specifier === '@eddy/sdk') return next(sdkUrl, context);
  return next(specifier, context);
}
