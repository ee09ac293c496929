// The embedded host's defaults, apart from the host itself: the CLI reads them without loading esbuild and hono.

/** Default port, as wrangler dev. */
export const DEFAULT_PORT = 8787
/** Default address: loopback only; exposing the host is a deliberate `--host 0.0.0.0`. */
export const DEFAULT_HOSTNAME = '127.0.0.1'
/** How long shutdown waits for in-flight requests before closing them. */
export const DEFAULT_SHUTDOWN_GRACE_MS = 10_000
