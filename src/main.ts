/**
 * Start-up: parse the configuration, make the root logger, then run the cluster primary or a worker.
 * The only `process.exit` of the service. An invalid configuration prints its message (naming each
 * variable) to stderr and exits 1, before any process is forked.
 */
import cluster from "node:cluster";
import { ensureUsersFile, UserStore } from "./auth/users";
import { InMemorySessionCache } from "./cache/memory";
import { checkRedisServerVersion, RedisVersionError } from "./cache/redis-version";
import { loadSessionsFile } from "./cache/sessions-file";
import { runPrimary } from "./cluster/primary";
import { runWorker } from "./cluster/worker";
import { loadConfig, type Config } from "./config";
import { ConfigError } from "./errors";
import { createLogger, type Logger } from "./logger";

async function main(): Promise<number> {
  let config: Readonly<Config>;
  try {
    config = loadConfig(process.env);
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(err.message);
      return 1;
    }
    throw err;
  }
  const logger: Logger = createLogger(config.logLevel);
  try {
    if (!cluster.isPrimary) return await runWorker(config, logger);
    const users = await ensureUsersFile(config.usersFile);
    if (users.created) {
      // console, never the logger: the password must not end up in a log pipeline.
      console.log(
        `Created users file ${config.usersFile} with user ${users.username ?? "admin"}, password: ${users.password ?? ""} (shown once)`,
      );
    }
    // Read it once here: an unreadable users file stops the start with one clear error, instead of
    // workers dying one after the other until the primary gives up.
    (await UserStore.open(config.usersFile, { watch: false })).close();
    // Same for the memory backend's sessions file (its worker loads it): a bad one stops the start once.
    if (config.sessionBackend === "memory" && config.sessionsFile !== undefined) {
      await loadSessionsFile(config.sessionsFile, new InMemorySessionCache());
    }
    // Redis older than 7.0 stops the start here, once, naming its version (an unreachable one does not).
    await checkRedisServerVersion(config, logger);
    return await runPrimary(config, logger);
  } catch (err) {
    if (err instanceof ConfigError || err instanceof RedisVersionError) {
      console.error(err.message);
      return 1;
    }
    logger.fatal({ err }, cluster.isPrimary ? "the service could not start" : "worker failed");
    return 1;
  }
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
