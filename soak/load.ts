/**
 * The virtual users: a steady, bounded load. Each VU is one sequential client holding at most one
 * session: it logs in, checks its session, lists its user's sessions, sometimes revokes a peer's session,
 * logs out or logs out everywhere, then logs in again. Several VUs share a username, so logout-all and
 * revoke end sessions other VUs are still using; right after such a 204 the VU checks the ended session
 * on another instance (the tightest race a client can make). Tokens live only in memory here.
 */
import { send, tokenFrom, type Answer } from "./http-client";
import type { Rng } from "./rng";
import type { Op, Timeline } from "./timeline";

export interface LoadOptions {
  /** Base URLs of the instances (fixed ports, stable across restarts). */
  instances: () => readonly string[];
  users: ReadonlyArray<{ name: string; password: string }>;
  vus: number;
  timeoutMs: number;
  rng: Rng;
  timeline: Timeline;
}

/** What the checker needs to know about a session besides the requests. */
export interface SessionInfo {
  user: string;
  /** Public handle (from a list where it was `current`), once known. */
  handle?: string;
}

export interface Load {
  readonly sessions: Map<number, SessionInfo>;
  /** Stops the VUs after their request in flight; resolves when all have stopped. */
  stop(): Promise<void>;
}

export function startLoad(o: LoadOptions): Load {
  const sessions = new Map<number, SessionInfo>();
  const tokens = new Map<number, string>();
  const byHandle = new Map<string, number>();
  let nextSession = 0;
  let running = true;

  const request = async (
    vu: number, rng: Rng, op: Op, user: string, session: number, method: string, path: string,
    extra: { token?: string; body?: unknown; target?: number; avoid?: string } = {},
  ): Promise<Answer> => {
    const list = o.instances();
    const candidates = extra.avoid !== undefined && list.length > 1 ? list.filter((u) => u !== extra.avoid) : list;
    const base = rng.pick(candidates);
    const startMs = o.timeline.now();
    const a = await send(base, method, path, { token: extra.token, body: extra.body, timeoutMs: o.timeoutMs });
    const endMs = o.timeline.now();
    o.timeline.add({
      seq: o.timeline.nextSeq(), vu, op, user, session, startMs, endMs, status: a.status,
      ...(extra.target !== undefined ? { target: extra.target } : {}),
      ...(a.error !== undefined ? { error: a.error } : {}),
      ...(op === "check" && a.status === 200 ? { answeredUser: String(a.json?.username) } : {}),
    });
    return Object.assign(a, { base });
  };

  const check = (vu: number, rng: Rng, s: number, avoid?: string) =>
    request(vu, rng, "check", sessions.get(s)!.user, s, "GET", "/api/auth/session", { token: tokens.get(s)!, avoid });

  const runVu = async (vu: number): Promise<void> => {
    const rng = o.rng.fork(vu);
    const user = o.users[vu % o.users.length]!;
    let mine: number | undefined;
    const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
    while (running) {
      await sleep(rng.int(10, 60));
      if (!running) break;
      if (mine === undefined) {
        const s = nextSession++;
        const a = await request(vu, rng, "login", user.name, s, "POST", "/api/auth/login", {
          body: { username: user.name, password: user.password },
        });
        const token = a.status === 200 ? tokenFrom(a) : undefined;
        if (token !== undefined) {
          sessions.set(s, { user: user.name });
          tokens.set(s, token);
          mine = s;
        } else if (a.status === 429 || a.status === 503 || a.status === 0) {
          await sleep(rng.int(100, 400));
        }
        continue;
      }
      const me: number = mine;
      const token = tokens.get(me)!;
      const roll = rng.next();
      if (roll < 0.7) {
        const a = await check(vu, rng, me);
        if (a.status === 401) mine = undefined; // ended by a peer (revoke, logout-all) or lost
      } else if (roll < 0.8) {
        const a = await request(vu, rng, "list", user.name, me, "GET", "/api/auth/sessions", { token });
        if (a.status === 200) learnHandles(me, a);
        else if (a.status === 401) mine = undefined;
      } else if (roll < 0.86) {
        // revoke a peer's session of the same user, one whose owner is known
        const l = await request(vu, rng, "list", user.name, me, "GET", "/api/auth/sessions", { token });
        if (l.status === 401) mine = undefined;
        if (l.status !== 200) continue;
        learnHandles(me, l);
        const peers = (l.json?.sessions ?? []).filter((x: { current: boolean; id: string }) => !x.current && byHandle.has(x.id));
        if (peers.length === 0) continue;
        const victim = rng.pick(peers as Array<{ id: string }>);
        const target = byHandle.get(victim.id)!;
        const a = await request(vu, rng, "revoke", user.name, me, "DELETE", `/api/auth/sessions/${encodeURIComponent(victim.id)}`, {
          token, target,
        });
        if (a.status === 204 && tokens.has(target)) await check(vu, rng, target, (a as Answer & { base: string }).base);
        if (a.status === 401) mine = undefined;
      } else if (roll < 0.96) {
        const a = await request(vu, rng, "logout", user.name, me, "POST", "/api/auth/logout", { token });
        if (a.status === 204) {
          await check(vu, rng, me, (a as Answer & { base: string }).base);
          mine = undefined;
        }
      } else {
        const a = await request(vu, rng, "logout-all", user.name, me, "POST", "/api/auth/logout-all", { token });
        if (a.status === 204) {
          await check(vu, rng, me, (a as Answer & { base: string }).base);
          mine = undefined;
        } else if (a.status === 401) mine = undefined;
      }
    }
  };

  const learnHandles = (s: number, a: Answer): void => {
    for (const x of (a.json?.sessions ?? []) as Array<{ id: string; current: boolean }>) {
      if (x.current) {
        const info = sessions.get(s);
        if (info !== undefined) info.handle = x.id;
        byHandle.set(x.id, s);
      }
    }
  };

  const vus = Array.from({ length: o.vus }, (_, i) => runVu(i));
  return {
    sessions,
    async stop() {
      running = false;
      await Promise.all(vus);
      tokens.clear();
    },
  };
}
