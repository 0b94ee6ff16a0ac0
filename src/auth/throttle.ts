import type { Cluster, Redis } from "ioredis";
import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes, type RateLimiterAbstract } from "rate-limiter-flexible";
import { SessionBackendUnavailableError, throttleKey } from "../cache";
import { LoginThrottledError } from "./errors";

/** Options of LoginThrottle. */
export interface LoginThrottleOptions {
  /** Failed logins per username+IP before 429 (`BANGUI_LOGIN_MAX_FAILURES`). @default 10 */
  maxFailures?: number;
  /** Window of the count, from the first failure (`BANGUI_LOGIN_WINDOW_SECONDS`). @default 900 */
  windowSeconds?: number;
  /** Shared counts in Redis (standalone or Cluster: single-key commands only); unset: process memory. @default undefined */
  redis?: Redis | Cluster;
  /** Key prefix of the counters in Redis (`keys.throttlePrefix`). @default "bangui:login-fail" */
  keyPrefix?: string;
}

/**
 * Login throttling per username+IP with rate-limiter-flexible: RateLimiterRedis when a Redis client is
 * given (every worker and instance shares the count), RateLimiterMemory otherwise.
 *
 * `attempt` counts BEFORE the password check (one atomic INCR in Redis): concurrent guesses cannot all
 * slip through a check-then-count gap. A successful login then `reset`s the count, so only failures
 * accumulate. A store failure is SessionBackendUnavailableError: fail closed (503), never "not throttled".
 */
export class LoginThrottle {
  readonly maxFailures: number;
  private readonly limiter: RateLimiterAbstract;

  constructor(options: LoginThrottleOptions = {}) {
    this.maxFailures = options.maxFailures ?? 10;
    const common = {
      points: this.maxFailures,
      duration: options.windowSeconds ?? 900,
      keyPrefix: options.keyPrefix ?? "bangui:login-fail",
    };
    this.limiter = options.redis
      ? new RateLimiterRedis({ ...common, storeClient: options.redis, useRedisPackage: false })
      : new RateLimiterMemory(common);
  }

  /**
   * Counts one attempt of `username` from `ip`.
   * @throws LoginThrottledError when the failures of the window are used up (with the seconds to wait)
   * @throws SessionBackendUnavailableError when the store cannot answer
   */
  async attempt(username: string, ip: string): Promise<void> {
    try {
      await this.limiter.consume(throttleKey(username, ip), 1);
    } catch (err) {
      if (err instanceof RateLimiterRes) {
        throw new LoginThrottledError(Math.max(1, Math.ceil(err.msBeforeNext / 1000)));
      }
      throw new SessionBackendUnavailableError("the login throttle store is unavailable", { cause: err });
    }
  }

  /** Forgets the count of `username` from `ip` (after a successful login). */
  async reset(username: string, ip: string): Promise<void> {
    try {
      await this.limiter.delete(throttleKey(username, ip));
    } catch (err) {
      throw new SessionBackendUnavailableError("the login throttle store is unavailable", { cause: err });
    }
  }
}
