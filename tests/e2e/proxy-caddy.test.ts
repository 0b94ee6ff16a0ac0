import { startCaddy } from "../helpers/caddy";
import { describeProxy } from "./proxy-suite";

/** docker/proxies/Caddyfile with a real Caddy (forward_auth -> GET /api/auth/forward-auth). */
describeProxy("caddy", startCaddy);
