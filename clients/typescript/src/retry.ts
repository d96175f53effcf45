/**
 * When to retry a call, and how long to wait before the next attempt.
 *
 * @module
 */
import { Code, ConnectError } from "@connectrpc/connect";

/**
 * Exponential backoff with full jitter, bounded by a number of attempts.
 *
 * Attempt 1 runs at once; before attempt n + 1 the client waits a random time between 0 and
 * `min(maxDelayMs, initialDelayMs * multiplier ** (n - 1))` milliseconds.
 */
export interface RetryPolicy {
  /** Attempts in total, the first included (at least 1). */
  readonly maxAttempts: number;
  /** The upper bound of the first wait, in milliseconds. */
  readonly initialDelayMs: number;
  /** The largest upper bound of a wait, in milliseconds. */
  readonly maxDelayMs: number;
  /** How much the bound grows after each failed attempt (at least 1). */
  readonly multiplier: number;
}

/** The policy of unary calls that are safe to repeat (publishing with a key, reads). */
export const DEFAULT_RETRY: RetryPolicy = Object.freeze({
  maxAttempts: 5,
  initialDelayMs: 100,
  maxDelayMs: 5_000,
  multiplier: 2,
});

/**
 * The reconnection policy of the feed: consecutive failed connections before it gives up, about
 * 15 s of outage on average (up to about 30 s), enough for a server restart. Any message received
 * resets the count.
 */
export const FEED_RETRY: RetryPolicy = Object.freeze({
  maxAttempts: 10,
  initialDelayMs: 100,
  maxDelayMs: 5_000,
  multiplier: 2,
});

/** `base` with `overrides` applied; throws a `RangeError` for values that make no sense. */
export function retryPolicy(
  overrides: Partial<RetryPolicy> = {},
  base: RetryPolicy = DEFAULT_RETRY,
): RetryPolicy {
  const policy = { ...base, ...overrides };
  if (!(policy.maxAttempts >= 1)) {
    throw new RangeError("retry.maxAttempts must be at least 1");
  }
  if (!(policy.initialDelayMs >= 0) || !(policy.maxDelayMs >= 0) || !(policy.multiplier >= 1)) {
    throw new RangeError("retry delays must not be negative and multiplier must be at least 1");
  }
  return Object.freeze(policy);
}

/** Milliseconds to wait after `failures` consecutive failures (1 or more). */
export function backoffDelayMs(
  policy: RetryPolicy,
  failures: number,
  random: () => number = Math.random,
): number {
  const bound = Math.min(
    policy.maxDelayMs,
    policy.initialDelayMs * policy.multiplier ** Math.max(0, failures - 1),
  );
  return random() * bound;
}

// UNAVAILABLE: the server (or its database) is down, or no connection could be made.
// DEADLINE_EXCEEDED may hide a commit that happened, and ABORTED is also what a connection reset
// mid-call looks like: retrying either is safe only because the calls retried are idempotent
// (publishing carries an idempotency key).
const RETRYABLE = new Set<Code>([Code.Unavailable, Code.DeadlineExceeded, Code.Aborted]);

/** True when `error` is a transient failure worth another attempt of an idempotent call. */
export function isRetryable(error: unknown): boolean {
  return error instanceof ConnectError && RETRYABLE.has(error.code);
}

/** Resolves after `ms` milliseconds, or rejects with the signal's reason when it aborts first. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/**
 * Run `call` until it succeeds, fails with an error that is not transient, or `policy.maxAttempts`
 * attempts have failed (the last error is thrown). Only for calls that are safe to repeat.
 */
export async function withRetry<T>(
  policy: RetryPolicy,
  call: () => Promise<T>,
  signal?: AbortSignal,
): Promise<T> {
  for (let failures = 0; ;) {
    try {
      return await call();
    } catch (error) {
      failures += 1;
      if (signal?.aborted || !isRetryable(error) || failures >= policy.maxAttempts) {
        throw error;
      }
    }
    await sleep(backoffDelayMs(policy, failures), signal);
  }
}
