"""Places the demo order and follows it: creates an order_fulfilment task from
demo/order.json (through tasker.Client, on the database named by
TASKER_DATABASE_URL), prints each step as it starts, retries and finishes, with the
language that ran it (each handler reports its runtime in `handled_by`), then the
outcome. Exit code 0 when the order went through, 1 when the task ended otherwise, 2
when it did not end in time or something else went wrong.

The steps run in the demo's worker processes, one per language (scripts/demo
starts them)."""

import argparse
import json
import os
import sys
import time

import tasker

HERE = os.path.dirname(os.path.abspath(__file__))
DEMO = os.path.dirname(HERE)
SYMBOLS = {"GBP": "£", "EUR": "€", "USD": "$"}
FINISHED = {"complete", "error", "cancelled", "resolved_manually", "blocked_by_failures"}


def money(cents, currency):
    return f"{SYMBOLS.get(currency, currency + ' ')}{cents // 100}.{cents % 100:02d}"


def follow(client, task_uuid, timeout_s):
    """Prints step changes until the task finishes; returns the final task."""
    seen = {}
    started = {}
    width = 0
    deadline = time.monotonic() + timeout_s
    while True:
        task = client.get_task(task_uuid)
        width = max(width, *(len(s["name"]) for s in task["steps"]))
        for step in task["steps"]:
            name, state, attempts = step["name"], step["state"], step["attempts"]
            if seen.get(name) == (state, attempts):
                continue
            seen[name] = (state, attempts)
            label = name.ljust(width)
            if state == "in_progress":
                started[name] = time.monotonic()
                again = f" (attempt {attempts})" if attempts > 1 else ""
                print(f"  ▸ {label}  running{again}", flush=True)
            elif state == "waiting_for_retry":
                error = step.get("error") or {}
                print(f"  ↻ {label}  attempt {attempts} failed: {error.get('message')}; will retry", flush=True)
            elif state == "complete":
                took = time.monotonic() - started.get(name, time.monotonic())
                ran = (step.get("result") or {}).get("handled_by", "?")
                print(f"  ✓ {label}  done in {took:.2f} s  [{ran}]", flush=True)
            elif state == "error":
                error = step.get("error") or {}
                print(f"  ✗ {label}  failed: {error.get('error_type')}: {error.get('message')}", flush=True)
        if task["state"] in FINISHED:
            return task
        if time.monotonic() > deadline:
            print(f"gave up waiting after {timeout_s} s (task {task['state']})", file=sys.stderr)
            return task
        time.sleep(0.05)


def summary(task):
    steps = {s["name"]: s.get("result") or {} for s in task["steps"]}
    order, stock, pay = steps["validate_order"], steps["reserve_inventory"], steps["charge_payment"]
    ship, mail = steps["ship_order"], steps["notify_customer"]
    cur = order["currency"]
    lines = ", ".join(f"{l['sku']} ×{l['quantity']}" for l in stock["lines"])
    print(
        f"  total     {money(order['total_cents'], cur)} (items {money(order['subtotal_cents'], cur)}, "
        f"VAT {money(order['tax_cents'], cur)}, shipping {money(order['shipping_cents'], cur)})"
    )
    print(f"  payment   {pay['payment_id']}: {pay['status']}, card ending {pay['card_last4']}")
    print(f"  stock     {stock['reservation_id']} at {stock['warehouse']}: {lines}")
    print(f"  shipment  {ship['carrier']} {ship['tracking_number']}, {ship['parcels']} parcel(s), {ship['eta_days']} days")
    print(f"  email     to {mail['to']}: {mail['subject']}")
    print(f"            {mail['body']}")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--order", default=os.path.join(DEMO, "order.json"), help="the order (task context), JSON")
    p.add_argument("--timeout", type=float, default=60, help="seconds to wait for the order")
    p.add_argument("--json", action="store_true", help="also print the finished task as JSON")
    args = p.parse_args()
    with open(args.order, encoding="utf-8") as f:
        order = json.load(f)

    with tasker.Client(templates=[os.path.join(DEMO, "order_fulfilment.yaml")]) as client:
        t0 = time.monotonic()
        created = client.create_task("fulfilment", "order_fulfilment", order)
        print(f"order {order['order_id']}: task {created['task_uuid']} (fulfilment/order_fulfilment@1.0.0)")
        task = follow(client, created["task_uuid"], args.timeout)
        print(f"\ntask {task['state']} in {time.monotonic() - t0:.1f} s")
        if task["state"] == "complete":
            summary(task)
        if args.json:
            print(json.dumps(task, indent=2, ensure_ascii=False))
    if task["state"] == "complete":
        return 0
    return 1 if task["state"] in FINISHED else 2


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Exception:  # noqa: BLE001 - report, and let scripts/demo show the workers' logs
        import traceback

        traceback.print_exc()
        sys.exit(2)
