/**
 * Runs the demo's TypeScript step (namespace fulfilment.typescript) on the database
 * named by TASKER_DATABASE_URL until SIGTERM.
 */

import { Worker } from "tasker-core";
import { chargePayment } from "./handlers";

new Worker({ namespaces: ["fulfilment.typescript"], handlers: [chargePayment], pollIntervalMs: 50 })
  .run()
  .catch((e: unknown) => {
    console.error(e);
    process.exit(1);
  });
