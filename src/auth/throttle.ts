import type { Cluster, Redis } from "ioredis";
import {
  RateLimiterCluster,
  RateLimiterMemory,
  RateLimiterRedis,
  RateLimiterRes,
  type IRateLimiterOptions,
  type RateLimiterAbstract,
} from "rate-limiter-flexible";
import { SessionBackendUnavailableError, throttleIpKey, throttleKey } from "../cache";
import { LoginThrottledError } from "./errors";

/** Options of LoginThrottle. */
export interface LoginThrottleOptions {
  /** Failed logins per username+IP before 429 (`BANGUI_LOGIN_MAX_FAILURES`). @default 10 */
  maxFailures?: number;
  /** Login attempts (any username, success or not) per IP before 429 (`BANGUI_LOGIN_MAX_PER_IP`). @default 100 */
  maxPerIp?: number;
  /** Window of the counts, from the first attempt (`BANGUI_LOGIN_WINDOW_SECONDS`). @default 900 */
  windowSeconds?: number;
  /** Shared counts in Redis (standalone or Cluster: single-key commands only). @default undefined */
  redis?: Redis | Cluster;
  /**
   * Shared counts held by the node:cluster primary (rate-limiter-flexible's RateLimiterCluster; the
   * primary runs RateLimiterClusterMaster): the ipc backend's choice. Ignored when `redis` is given.
   * @default false (process memory)
   */
  cluster?: boolean;
  /** How long a cluster count waits for the primary before failing closed. @default 1000 */
  clusterTimeoutMs?: number;
  /** Key prefix of the failure counters (`keys.throttlePrefix`). @default "bangui:login-fail" */
  keyPrefix?: string;
  /** Key prefix of the per-IP counters (`keys.throttleIpPrefix`). @default "bangui:login-ip" */
  ipKeyPrefix?: string;
}

/**
 * Login throttling with rate-limiter-flexible, per IP (every attempt) and per username+IP (failures):
 * RateLimiterRedis when a Redis client is given (every worker and instance shares the counts),
 * RateLimiterCluster with the ipc backend (the primary holds them), RateLimiterMemory otherwise.
 *
 * `attempt` counts BEFORE the password check (one atomic step): concurrent guesses cannot all slip
 * through a check-then-count gap. A successful login then `reset`s the username+IP count, so only
 * failures accumulate there; the per-IP count bounds the scrypt work one address can cause with
 * random usernames. A store failure is SessionBackendUnavailableError: fail closed (503).
 */
export class LoginThrottle {
  readonly maxFailures: number;
  readonly maxPerIp: number;
  private readonly failures: RateLimiterAbstract;
  private readonly perIp: RateLimiterAbstract;

  constructor(options: LoginThrottleOptions = {}) {
    this.maxFailures = options.maxFailures ?? 10;
    this.maxPerIp = options.maxPerIp ?? 100;
    const duration = options.windowSeconds ?? 900;
    const make = (points: number, keyPrefix: string): RateLimiterAbstract => {
      const common: IRateLimiterOptions = { points, duration, keyPrefix };
      if (options.redis) return new RateLimiterRedis({ ...common, storeClient: options.redis, useRedisPackage: false });
      if (options.cluster) return new RateLimiterCluster({ ...common, timeoutMs: options.clusterTimeoutMs ?? 1000 });
      return new RateLimiterMemory(common);
    };
    this.failures = make(this.maxFailures, options.keyPrefix ?? "bangui:login-fail");
    this.perIp = make(this.maxPerIp, options.ipKeyPrefix ?? "bangui:login-ip");
  }

  /**
   * Counts one attempt of `username` from `ip`: against the address, then against username+IP.
   * @throws LoginThrottledError when either count of the window is used up (with the seconds to wait)
   * @throws SessionBackendUnavailableError when the store cannot answer
   */
  async attempt(username: string, ip: string): Promise<void> {
    await this.consume(this.perIp, throttleIpKey(ip));
    await this.consume(this.failures, throttleKey(username, ip));
  }

  /** Forgets the failures of `username` from `ip` (after a successful login); the per-IP count stays. */
  async reset(username: string, ip: string): Promise<void> {
    try {
      await this.failures.delete(throttleKey(username, ip));
    } catch (err) {
      throw new SessionBackendUnavailableError("the login throttle store is unavailable", { cause: err });
    }
  }

  private async consume(limiter: RateLimiterAbstract, key: string): Promise<void> {
    try {
      await limiter.consume(key, 1);
    } catch (err) {
      if (err instanceof RateLimiterRes) {
        throw new LoginThrottledError(Math.max(1, Math.ceil(err.msBeforeNext / 1000)));
      }
      throw new SessionBackendUnavailableError("the login throttle store is unavailable", { cause: err });
    }
  }
}
