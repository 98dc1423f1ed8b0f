/** The TypeScript step of the polyglot demo: charge_payment. */

import { setTimeout as sleep } from "node:timers/promises";
import { defineHandler, RetryableError } from "tasker-core";

const RUNTIME = `node ${process.versions.node}`;

type Priced = { order_id: string; total_cents: number; currency: string };
type Payment = { card_last4: string; gateway_busy_once?: boolean };

/**
 * Captures the order's total on the customer's card. With `gateway_busy_once`, the
 * gateway answers 503 the first time, as real ones do: the step asks to be retried
 * after half a second, and the second attempt goes through.
 */
export const chargePayment = defineHandler("charge_payment", async (context) => {
  const order = context.dependency<Priced>("validate_order");
  const payment = context.input<Payment>("payment");
  if (payment.gateway_busy_once && context.attempt === 1) {
    throw new RetryableError("payment gateway busy (HTTP 503)", { retryAfter: 0.5 });
  }
  await sleep(200, undefined, { signal: context.signal });
  return {
    payment_id: `PAY-${order.order_id}-${context.attempt}`,
    status: "captured",
    amount_cents: order.total_cents,
    currency: order.currency,
    card_last4: payment.card_last4,
    handled_by: RUNTIME,
  };
});
