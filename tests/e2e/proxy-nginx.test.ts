import { startNginx } from "../helpers/nginx";
import { describeProxy } from "./proxy-suite";

/** docker/proxies/nginx.conf with a real nginx (auth_request -> GET /api/auth/verify). */
describeProxy("nginx", startNginx);
