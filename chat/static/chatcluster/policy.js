// When ChatClient (client.js) reconnects and retries, by close code and error: the same
// policy as the Python client's (chat/client/policy.py), in milliseconds.

// Backoff: full jitter over base * 2^attempt, capped so a user waits at most ~10 s.
const BACKOFF_BASE_MS = 500;
const BACKOFF_CAP_MS = 10_000;
// 1012 means "this node is draining, go elsewhere": come back at once, spread a little.
const CLOSE_DRAINING = 1012;
const DRAIN_SPREAD_MS = 300;
// 1013 "try again later": the node is busy (a reconnect storm) or a backend is briefly
// away. Wait at least BUSY_FLOOR_MS, then a jittered backoff of at least attempt 2, so a
// storm spreads out.
const CLOSE_TRY_AGAIN = 1013;
const BUSY_FLOOR_MS = 250;
const BUSY_MIN_ATTEMPT = 2;
// A frame answered `unavailable` is sent again after this plus a backoff.
const UNAVAILABLE_WAIT_MS = 500;
// A rate-limited publish waits `retry_after` plus this, so the bucket has its token.
const RATE_MARGIN_MS = 50;

export const CLOSE_UNAUTHENTICATED = 4401;
export const CLOSE_ORIGIN = 4403;

export function backoffDelay(attempt, random = Math.random) {
  return Math.round(random() * Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** attempt));
}

/** The wait before reconnecting after close `code`, and the attempt number to count from next. */
export function reconnectDelay(code, attempt) {
  if (code === CLOSE_DRAINING) return { delay: Math.round(Math.random() * DRAIN_SPREAD_MS), attempt };
  if (code === CLOSE_TRY_AGAIN) {
    return { delay: BUSY_FLOOR_MS + backoffDelay(Math.max(BUSY_MIN_ATTEMPT, attempt)), attempt: attempt + 1 };
  }
  return { delay: backoffDelay(attempt), attempt: attempt + 1 };
}

/** The wait before sending again a frame answered `unavailable` or `rate_limited` (error frame `f`). */
export function retryDelay(f) {
  if (f.code === "rate_limited") return (f.retry_after ?? 1) * 1000 + RATE_MARGIN_MS;
  return UNAVAILABLE_WAIT_MS + backoffDelay(BUSY_MIN_ATTEMPT);
}
