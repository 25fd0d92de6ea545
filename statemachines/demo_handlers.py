"""Handlers for the example state machines: stand-ins for real services, so the demos run anywhere.

Use them with ``--handlers statemill.statemachines.demo_handlers``.
"""
from __future__ import annotations

import os
import time
import uuid

from statemill.engine import TaskFailure


def reserve(order):
    return {"reservationId": f"res-{order['orderId']}", "items": len(order["items"])}


def charge(request):
    if request["amount"] <= 0:
        raise TaskFailure("Payment.Declined", f"amount {request['amount']} cannot be charged")
    return {"id": f"ch-{uuid.uuid5(uuid.NAMESPACE_URL, request['idempotencyKey']).hex[:12]}",
            "amount": request["amount"]}


def ship(request):
    if request["address"].get("country") not in ("NL", "BE", "DE", "FR"):
        raise TaskFailure("Shipping.Unreachable", f"we do not ship to {request['address'].get('country')!r}")
    return {"trackingNumber": f"TRK-{request['orderId']}", "carrier": "PostNL"}


def refund(request):
    return {"refunded": request["amount"], "chargeId": request["chargeId"]}


def release(request):
    return {"released": request["reservationId"]}


def forecast(request, context):
    """Unavailable on the first two attempts, to show Retry at work."""
    if context.attempt < 2:
        raise TaskFailure("Weather.Unavailable", f"attempt {context.attempt}: service busy, try again")
    return {"city": request["city"], "summary": "light rain", "celsius": 11}


def resize(request):
    """A broken image fails until ``DEMO_FIXED=1`` is set: fix it, then redrive (README, "Redrive")."""
    if request["image"].startswith("broken") and os.environ.get("DEMO_FIXED") != "1":
        raise TaskFailure("Image.Unreadable", f"{request['image']} cannot be read (set DEMO_FIXED=1 and redrive)")
    time.sleep(0.2)  # pretend to work
    return {"index": request["index"], "image": request["image"].replace(".png", f"-{request['width']}.png")}


def send(message):
    print(f"[notify] to {message['to']}: {message['message']}", flush=True)
    return {"sent": True}


def price(batch):
    """A Distributed Map batch of CSV rows (strings): their total with VAT; an order of amount 0 fails the batch."""
    total = 0.0
    for order in batch["Items"]:
        if float(order["amount"]) <= 0:
            raise TaskFailure("Orders.Invalid", f"order {order['orderId']} has no amount")
        total += float(order["amount"]) * 1.21
    return {"orders": len(batch["Items"]), "total": round(total, 2), "currency": batch["BatchInput"]["currency"]}


HANDLERS = {
    "orders.price": price,
    "inventory.reserve": reserve,
    "inventory.release": release,
    "payments.charge": charge,
    "payments.refund": refund,
    "shipping.ship": ship,
    "weather.forecast": forecast,
    "images.resize": resize,
    "notify.send": send,
}
