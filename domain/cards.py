"""Card numbers as the sandbox gateway sees them (modelled on common gateway test cards).
A number never leaves the tokenising call: we keep a token, the brand and the last four."""

from dataclasses import dataclass

from domain.errors import CardRejected, InvalidInput

# Sandbox behaviours, keyed by the full test number (SIMULATE.md).
SANDBOX_CARDS = {
    "4242424242424242": "ok",
    "4000000000000341": "card_declined",
    "4000000000009995": "insufficient_funds",
    "4000000000000002": "rejected",
}


# What a card is to us: a sandbox token, or a Stripe PaymentMethod (its console collects the number).
CARD_TOKEN_PREFIXES = ("tok_", "pm_")

# The sandbox's test numbers as Stripe's test PaymentMethods, for the demo on BILLING_GATEWAY=stripe
# (ids that Stripe's test mode and localstripe both know: the card attaches, then charges or declines).
STRIPE_TEST_PAYMENT_METHODS = {
    "4242424242424242": "pm_card_visa",
    "4000000000000341": "pm_card_chargeCustomerFail",
}


@dataclass(frozen=True)
class CardDetails:
    token: str
    brand: str
    last4: str


def luhn_valid(number: str) -> bool:
    digits = [int(d) for d in reversed(number)]
    checksum = sum(digits[0::2]) + sum(sum(divmod(2 * d, 10)) for d in digits[1::2])
    return checksum % 10 == 0


def brand_of(number: str) -> str:
    if number.startswith("4"):
        return "visa"
    if number[:2] in {"51", "52", "53", "54", "55"} or 2221 <= int(number[:4]) <= 2720:
        return "mastercard"
    if number[:2] in {"34", "37"}:
        return "amex"
    return "card"


def normalise_number(raw: str) -> str:
    number = str(raw).replace(" ", "").replace("-", "")
    if not number.isdigit() or not 12 <= len(number) <= 19:
        raise InvalidInput("card: a card number is 12 to 19 digits")
    if not luhn_valid(number):
        raise InvalidInput(f"card: number ending {number[-4:]} fails the checksum; check the digits")
    return number


def sandbox_tokenise(raw: str) -> CardDetails:
    """Validate a number the way the sandbox gateway does and return what may be stored."""
    number = normalise_number(raw)
    behaviour = SANDBOX_CARDS.get(number)
    if behaviour is None:
        raise InvalidInput(f"card: number ending {number[-4:]} is not a sandbox test card")
    if behaviour == "rejected":
        raise CardRejected(f"card ending {number[-4:]} was rejected by the gateway; the previous card stays in place")
    return CardDetails(token=f"tok_sandbox_{behaviour}_{number[-4:]}", brand=brand_of(number), last4=number[-4:])


def stripe_test_card(raw: str) -> CardDetails:
    """A sandbox test number as the Stripe test PaymentMethod that behaves the same way."""
    number = normalise_number(raw)
    if number not in STRIPE_TEST_PAYMENT_METHODS:
        raise InvalidInput(f"card: number ending {number[-4:]} has no Stripe test PaymentMethod here; "
                           f"use one of {', '.join(n[-4:] for n in STRIPE_TEST_PAYMENT_METHODS)}")
    return CardDetails(token=STRIPE_TEST_PAYMENT_METHODS[number], brand=brand_of(number), last4=number[-4:])


def sandbox_behaviour(token: str) -> str:
    """What the sandbox does with a token it issued: 'ok' or a decline code."""
    for behaviour in ("card_declined", "insufficient_funds", "ok"):
        if token.startswith(f"tok_sandbox_{behaviour}_"):
            return behaviour
    return "card_declined"


BRAND_NAMES = {"visa": "Visa", "mastercard": "Mastercard", "amex": "Amex"}


def card_label(brand: str | None, last4: str | None) -> str | None:
    """A card as receipts and invoices print it ("Visa •••• 4242"); a brand we do not know is
    left out rather than printed as a word in one language."""
    if not last4:
        return None
    name = BRAND_NAMES.get(brand or "")
    return f"{name} •••• {last4}" if name else f"•••• {last4}"


def card_with_expiry(brand: str | None, last4: str | None, expiry: tuple[int, int] | None) -> str | None:
    """The card as staff see it: "Visa •••• 4242, expires 12/2031" (no expiry when none is kept)."""
    label = card_label(brand, last4)
    if label is None or expiry is None:
        return label
    month, year = expiry
    return f"{label}, expires {month:02d}/{year}"
