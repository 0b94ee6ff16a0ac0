#!/usr/bin/env node
/** `npx bangui-users add <name> | remove <name> | list`: the users CLI (src/auth/users-cli.ts). */
require("../auth/users-cli");
