/**
 * How the client runs unary calls: its deadline, its retry policy, and per-call options.
 *
 * @internal
 * @module
 */
import type { CallOptions as ConnectCallOptions } from "@connectrpc/connect";
import { withRetry, type RetryPolicy } from "./retry.js";

/** Per-call options of every client method. */
export interface CallOptions {
  /** Cancels the call, and any wait between its retries. */
  signal?: AbortSignal;
  /** The deadline of each attempt, in milliseconds; overrides the client's `timeoutMs`. */
  timeoutMs?: number;
  /** Extra request headers (metadata). */
  headers?: Record<string, string>;
}

/** Runs unary calls with the client's deadline and retry policy. */
export class Caller {
  constructor(
    readonly retry: RetryPolicy,
    readonly timeoutMs: number | undefined,
  ) {}

  /** The Connect call options of one attempt. */
  options(call: CallOptions = {}): ConnectCallOptions {
    const options: ConnectCallOptions = {};
    const timeoutMs = call.timeoutMs ?? this.timeoutMs;
    if (timeoutMs !== undefined) options.timeoutMs = timeoutMs;
    if (call.signal !== undefined) options.signal = call.signal;
    if (call.headers !== undefined) options.headers = call.headers;
    return options;
  }

  /** One attempt: for calls that must not be repeated (creating, deleting, rotating). */
  once<T>(method: (options: ConnectCallOptions) => Promise<T>, call?: CallOptions): Promise<T> {
    return method(this.options(call));
  }

  /** Retried on transient errors: only for calls that are safe to repeat. */
  retrying<T>(method: (options: ConnectCallOptions) => Promise<T>, call?: CallOptions): Promise<T> {
    const options = this.options(call);
    return withRetry(this.retry, () => method(options), call?.signal);
  }
}

/** A message field the server always sets; a clear error instead of `undefined` downstream. */
export function required<T>(value: T | undefined): T {
  if (value === undefined) {
    throw new TypeError("the server's response lacks a required message");
  }
  return value;
}
