/**
 * Loads the native addon (`native/tasker_node.<platform>-<arch>[-<libc>].node`,
 * shipped inside the package) on first use and describes its exports. Every
 * value crosses the boundary as JSON text; `bridge.ts` encodes and decodes it.
 *
 * `TASKER_NATIVE_MODULE` (a path to a `.node` file) overrides the lookup.
 */

import * as fs from "node:fs";
import * as path from "node:path";

/** The native bridge object (`src/worker.rs`): JSON text in and out. */
export interface NativeBridge {
  pollStepEvents(maxEvents: number, timeoutMs: number): Promise<string>;
  completeStepEvents(resultsJson: string): Promise<string>;
  extendLease(eventId: string): Promise<number>;
  releaseStepEvent(eventId: string): Promise<boolean>;
  checkpointStep(eventId: string, cursorJson: string, dataJson: string): Promise<void>;
  publishDomainEvent(name: string, payloadJson: string, mode?: string | null, eventId?: string | null): Promise<string>;
  workerStatus(): string;
  shutdown(graceMs: number): Promise<string>;
  createTask(requestJson: string): Promise<string>;
  getTask(taskUuid: string): Promise<string>;
  waitForTask(taskUuid: string, timeoutMs: number): Promise<string>;
}

/** The native durable event subscriber (`src/subscriber.rs`): JSON text out. */
export interface NativeEventSubscriber {
  readonly consumer: string;
  poll(maxEvents: number, timeoutMs: number): Promise<string>;
  ack(sequence: number): Promise<number>;
  rewind(): Promise<void>;
}

/** The addon's exports (`src/lib.rs`). */
export interface NativeModule {
  NativeBridge: {
    open(optionsJson: string): Promise<NativeBridge>;
    loopback(concurrency: number): Promise<NativeBridge>;
  };
  NativeEventSubscriber: {
    open(bridge: NativeBridge, consumer: string, namePattern?: string | null): NativeEventSubscriber;
  };
  drainLogRecords(max?: number | null): string;
  installLogForwarding(level?: string | null): boolean;
  runtimePid(): number | null;
  nativeVersion(): string;
  errorCodes(): string[];
  panicForTest(message: string): void;
  panicForTestAsync(message: string): Promise<void>;
}

let loaded: NativeModule | undefined;
let loadedFrom: string | undefined;

/** Candidate file names for this platform, most specific first. */
function candidates(): string[] {
  const base = `tasker_node.${process.platform}-${process.arch}`;
  if (process.platform === "linux") {
    return [`${base}-gnu.node`, `${base}-musl.node`, `${base}.node`];
  }
  return [`${base}.node`];
}

/** Where the addon is (or would be) loaded from. */
export function nativePath(): string {
  if (loadedFrom !== undefined) return loadedFrom;
  const override = process.env.TASKER_NATIVE_MODULE;
  if (override) return path.resolve(override);
  const dir = path.join(__dirname, "..", "native");
  for (const name of candidates()) {
    const file = path.join(dir, name);
    if (fs.existsSync(file)) return file;
  }
  return path.join(dir, candidates()[0]);
}

/** The addon, loaded on first use. */
export function native(): NativeModule {
  if (loaded !== undefined) return loaded;
  const file = nativePath();
  if (!fs.existsSync(file)) {
    throw new Error(
      `tasker-core: no native addon for ${process.platform}-${process.arch} at ${file} ` +
        "(this package ships a prebuilt addon for the platform it was packed on; " +
        "build one with `npm run build:native` in bindings-typescript/, or set TASKER_NATIVE_MODULE)",
    );
  }
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  loaded = require(file) as NativeModule;
  loadedFrom = file;
  return loaded;
}
