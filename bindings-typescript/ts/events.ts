/**
 * `EventSubscriber`: reads durable domain events as a named consumer, at least
 * once (`tasker_core::events::subscriber` one-to-one).
 *
 * `poll` returns the events after the last one this subscriber handed out (its
 * first poll starts after the consumer's acknowledged sequence); `ack(sequence)`
 * records that the consumer has handled everything up to `sequence`. A new
 * subscriber with the same consumer name (a restart, another process) gets again
 * whatever was not acknowledged; consumers with different names are independent.
 * `poll` returns a Promise and waits on the core's tokio runtime, so the
 * JavaScript thread never blocks.
 *
 * ```ts
 * const subscriber = new EventSubscriber(engine.bridge, "billing", { namePattern: "order.*" });
 * for await (const event of subscriber) { // waits for events; never ends by itself
 *   handle(event.name, event.payload);
 *   await subscriber.ack(event.sequence);
 * }
 * ```
 */

import type { Bridge } from "./bridge";
import { nativeAsync, nativeSync } from "./errors";
import type { StoredDomainEvent } from "./messages";
import { native, type NativeEventSubscriber } from "./native";

/** Options of an `EventSubscriber`. */
export interface EventSubscriberOptions {
  /** Only events whose name matches (`*` matches anything: `order.*`). */
  namePattern?: string;
}

/** A named consumer of durable domain events on a bridge's database. */
export class EventSubscriber implements AsyncIterable<StoredDomainEvent> {
  /** The native object (JSON text out). */
  readonly native: NativeEventSubscriber;

  constructor(bridge: Bridge, consumer: string, options: EventSubscriberOptions = {}) {
    this.native = nativeSync(() =>
      native().NativeEventSubscriber.open(bridge.native, String(consumer), options.namePattern ?? null),
    );
  }

  /** The consumer's name. */
  get consumer(): string {
    return this.native.consumer;
  }

  /**
   * Waits up to `timeoutMs` for events; at most `maxEvents` stored events, oldest
   * first; `[]` when the time runs out.
   */
  async poll(maxEvents = 100, timeoutMs = 1000): Promise<StoredDomainEvent[]> {
    const text = await nativeAsync(nativeSync(() => this.native.poll(maxEvents, timeoutMs)));
    return JSON.parse(text) as StoredDomainEvent[];
  }

  /** Records that every event up to `sequence` was handled; resolves to the stored offset. */
  async ack(sequence: number): Promise<number> {
    return nativeAsync(nativeSync(() => this.native.ack(sequence)));
  }

  /** Starts again after the acknowledged sequence: the next poll redelivers what was not acknowledged. */
  async rewind(): Promise<void> {
    await nativeAsync(nativeSync(() => this.native.rewind()));
  }

  /** Yields events as they arrive, waiting between them (one second per poll); ends only when the loop breaks. */
  async *[Symbol.asyncIterator](): AsyncIterator<StoredDomainEvent> {
    for (;;) {
      for (const event of await this.poll(100, 1000)) yield event;
    }
  }
}
