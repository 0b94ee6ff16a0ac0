import { InMemorySessionCache } from "../../src/cache";
import { describeSessionCacheContract } from "./session-cache.contract";

describeSessionCacheContract("memory", () => new InMemorySessionCache({ maxSessions: 1000 }), { stores: true });
