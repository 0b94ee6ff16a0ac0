import { NoOpSessionCache } from "../../src/cache";
import { describeSessionCacheContract } from "./session-cache.contract";

describeSessionCacheContract("noop", () => new NoOpSessionCache(), { stores: false });
