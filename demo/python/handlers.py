"""The Python steps of the polyglot demo: validate_order and notify_customer."""

import platform
import time

import tasker

RUNTIME = f"python {platform.python_version()}"

# Where we ship: VAT in percent, a flat shipping fee in cents, the currency.
MARKETS = {
    "GB": (20, 495, "GBP"),
    "DE": (19, 695, "EUR"),
    "FR": (20, 695, "EUR"),
    "NL": (21, 695, "EUR"),
    "IE": (23, 695, "EUR"),
    "US": (0, 1295, "USD"),
}
SYMBOLS = {"GBP": "£", "EUR": "€", "USD": "$"}


def money(cents, currency):
    return f"{SYMBOLS.get(currency, currency + ' ')}{cents // 100}.{cents % 100:02d}"


@tasker.handler("validate_order")
def validate_order(context):
    """Checks where the order goes and prices it (a fraud check takes a moment)."""
    time.sleep(0.15)
    country = context.input("shipping_address")["country"]
    if country not in MARKETS:
        raise tasker.PermanentError(f"we do not ship to {country}")
    vat_percent, shipping_cents, currency = MARKETS[country]
    items = context.input("items")
    subtotal = sum(i["quantity"] * i["unit_price_cents"] for i in items)
    tax = (subtotal * vat_percent + 50) // 100  # rounded half up
    return {
        "order_id": context.input("order_id"),
        "lines": [{"sku": i["sku"], "quantity": i["quantity"]} for i in items],
        "subtotal_cents": subtotal,
        "tax_cents": tax,
        "shipping_cents": shipping_cents,
        "total_cents": subtotal + tax + shipping_cents,
        "currency": currency,
        "handled_by": RUNTIME,
    }


@tasker.handler("notify_customer")
def notify_customer(context):
    """Writes the customer's shipping confirmation (sending it takes a moment)."""
    time.sleep(0.1)
    shipment = context.dependency("ship_order")
    payment = context.dependency("charge_payment")
    customer = context.input("customer")
    order_id = context.input("order_id")
    first_name = customer["name"].split()[0]
    body = (
        f"Hi {first_name}, your order {order_id} ({money(payment['amount_cents'], payment['currency'])}) "
        f"is on its way with {shipment['carrier']}: {shipment['parcels']} parcel(s), tracking "
        f"{shipment['tracking_number']}, expected in {shipment['eta_days']} days."
    )
    return {
        "channel": "email",
        "to": customer["email"],
        "subject": f"Your order {order_id} has shipped",
        "body": body,
        "handled_by": RUNTIME,
    }


HANDLERS = [validate_order, notify_customer]
