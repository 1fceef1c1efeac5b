import pytest

from domain.cards import (SANDBOX_CARDS, CardDetails, brand_of, luhn_valid, normalise_number,
                          sandbox_behaviour, sandbox_tokenise)
from domain.errors import CardRejected, InvalidInput


@pytest.mark.parametrize("number, valid", [
    ("4242424242424242", True),
    ("4000000000000341", True),
    ("4000000000009995", True),
    ("4000000000000002", True),
    ("4111111111111111", True),
    ("5555555555554444", True),
    ("378282246310005", True),
    ("79927398713", True),        # the textbook example
    ("79927398710", False),
    ("4242424242424241", False),  # last digit off by one
    ("4242424242424224", False),  # two digits swapped
])
def test_luhn(number, valid):
    assert luhn_valid(number) is valid


@pytest.mark.parametrize("number, brand", [
    ("4242424242424242", "visa"),
    ("5555555555554444", "mastercard"),
    ("2223003122003222", "mastercard"),
    ("378282246310005", "amex"),
    ("6011111111111117", "card"),
])
def test_brand_of(number, brand):
    assert brand_of(number) == brand


def test_normalise_number_strips_spaces_and_dashes():
    assert normalise_number("4242 4242-4242 4242") == "4242424242424242"


@pytest.mark.parametrize("number, expected", [
    ("4242424242424242", CardDetails("tok_sandbox_ok_4242", "visa", "4242")),
    ("4242 4242 4242 4242", CardDetails("tok_sandbox_ok_4242", "visa", "4242")),
    ("4000000000000341", CardDetails("tok_sandbox_card_declined_0341", "visa", "0341")),
    ("4000000000009995", CardDetails("tok_sandbox_insufficient_funds_9995", "visa", "9995")),
])
def test_sandbox_tokenise_accepted_cards(number, expected):
    assert sandbox_tokenise(number) == expected


def test_rejected_card_raises_card_rejected():
    with pytest.raises(CardRejected) as err:
        sandbox_tokenise("4000000000000002")
    assert err.value.type == "card_rejected"
    assert err.value.message == "card ending 0002 was rejected by the gateway; the previous card stays in place"


def test_unknown_valid_number_is_invalid_input():
    with pytest.raises(InvalidInput) as err:
        sandbox_tokenise("4111111111111111")
    assert err.value.message == "card: number ending 1111 is not a sandbox test card"


@pytest.mark.parametrize("raw, message", [
    ("4242424242424241", "card: number ending 4241 fails the checksum; check the digits"),
    ("4242abcd42424242", "card: a card number is 12 to 19 digits"),
    ("42424242424", "card: a card number is 12 to 19 digits"),          # 11 digits
    ("42424242424242424242", "card: a card number is 12 to 19 digits"),  # 20 digits
    ("", "card: a card number is 12 to 19 digits"),
])
def test_malformed_numbers_are_invalid_input(raw, message):
    with pytest.raises(InvalidInput) as err:
        sandbox_tokenise(raw)
    assert err.value.message == message


@pytest.mark.parametrize("number", list(SANDBOX_CARDS))
def test_full_number_never_leaves_the_tokeniser(number):
    try:
        details = sandbox_tokenise(number)
    except CardRejected as err:
        assert number not in str(err)
        return
    assert number not in details.token
    assert number not in repr(details)
    assert details.last4 == number[-4:]


def test_error_messages_never_contain_the_full_number():
    for raw in ("4111111111111111", "4242424242424241"):
        with pytest.raises(InvalidInput) as err:
            sandbox_tokenise(raw)
        assert raw not in str(err.value)


@pytest.mark.parametrize("token, behaviour", [
    ("tok_sandbox_ok_4242", "ok"),
    ("tok_sandbox_card_declined_0341", "card_declined"),
    ("tok_sandbox_insufficient_funds_9995", "insufficient_funds"),
    ("tok_live_abc", "card_declined"),   # unknown tokens never succeed
])
def test_sandbox_behaviour(token, behaviour):
    assert sandbox_behaviour(token) == behaviour


def test_sandbox_round_trip():
    assert sandbox_behaviour(sandbox_tokenise("4000000000009995").token) == "insufficient_funds"
    assert sandbox_behaviour(sandbox_tokenise("4242424242424242").token) == "ok"
