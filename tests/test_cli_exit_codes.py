"""The documented exit codes against a real workflow (the time-skipping server): a refusal and
an unknown org exit 1, a declined card exits 1 saying "declined" (not a success line), a card
number piped on standard input is accepted. `billing` runs as a subprocess, as a user runs it."""

import json

from tests.support.cli import billing, stack_env

GOOD = "4242424242424242"
DECLINING = "4000000000000341"   # the sandbox gateway declines every charge to it (domain.cards)


async def test_refusals_and_an_unknown_org_exit_1_in_one_line(stack):
    async with stack.worker():
        env = stack_env(stack)
        org_id = await stack.create_org(plan="standard", cycle="monthly", card=GOOD)
        run = await billing("org", "cancel", org_id, "--by", f"admin@{org_id}.test", **env)
        assert run.code == 0 and run.err == "" and "paid service continues until" in run.out, run
        run = await billing("org", "cancel", org_id, "--by", f"admin@{org_id}.test", **env)
        assert run.code == 1 and run.out == "" and len(run.err_lines) == 1, run
        assert run.err_lines[0].startswith("error: cancel refused: ") and "already cancelled" in run.err_lines[0]

        run = await billing("org", "upgrade", "nobody", "--plan", "professional", **env)
        assert run.code == 1 and run.out == "" and run.err_lines == [
            "error: upgrade refused: unknown org 'nobody': no workflow org-nobody in namespace 'default' (check "
            "BILLING_TEMPORAL_NAMESPACE; an org saved without its workflow gets one from `billing reconcile`)"], run
        run = await billing("org", "upgrade", "y" * 10_000, "--plan", "professional", **env)   # issue 22: echoed whole
        assert run.code == 1 and len(run.err_lines) == 1 and len(run.err) < 400, run
        assert run.err_lines[0].startswith("error: upgrade refused: unknown org 'yyyyyyyyyyyyyyyyyyyyyyyyyyy... "
                                           "(10000 characters): no workflow org-yyyy"), run


async def test_a_declined_card_exits_1_saying_declined_and_a_card_on_stdin_is_accepted(stack):
    async with stack.worker():
        env = stack_env(stack)
        org_id = await stack.create_org(plan="standard", cycle="monthly", card=GOOD)
        # A card that will decline is saved (nothing to charge yet): done.
        run = await billing("org", "update-card", org_id, stdin=f"{DECLINING}\n", **env)
        assert run.code == 0 and "card visa ending 0341 saved" in run.out and run.err == "", run

        run = await billing("org", "add-licences", org_id, "2", **env)
        assert run.code == 1 and run.out == "" and len(run.err_lines) == 1, run
        line = run.err_lines[0]
        assert line == (f"error: add_licences declined: add 2 licence(s) invoiced; payment of INV-{org_id}-0001 "
                        "declined (card_declined); the change waits for payment (status active)"), line
        shown = json.loads((await billing("org", "show", org_id, "--json", **env)).out)
        assert shown["source"] == "workflow" and shown["licences"] == 1 and shown["pending"]["total"] > 0
        assert shown["currency"] == "USD" and isinstance(shown["pending"]["total"], int)  # minor units

        # The new card, piped: the open invoice is charged at once, the licences arrive.
        run = await billing("org", "update-card", org_id, stdin=f"{GOOD}\n", **env)
        assert run.code == 0 and run.err == "", run
        assert "card visa ending 4242 saved" in run.out and f"paid INV-{org_id}-0001" in run.out
        assert GOOD not in run.out
        shown = json.loads((await billing("org", "show", org_id, "--json", **env)).out)
        assert shown["licences"] == 3 and shown["card_last4"] == "4242" and shown["pending"] is None

        history = json.loads((await billing("org", "history", org_id, "--json", **env)).out)
        assert [e["details"].get("last4") for e in history["events"] if e["event"] == "card_updated"] == \
            ["0341", "4242"]

        # `billing dunning retry-payment` (the former `billing retry-payment` too) is staff only.
        for argv in (["dunning", "retry-payment"], ["retry-payment"]):
            run = await billing(*argv, org_id, "--by", "someone@x.test", "--reason", "call", **env)
            assert run.code == 1 and "only billing staff may retry a payment" in run.err, run


async def test_org_create_of_an_existing_id_is_a_refusal_exit_1(stack):
    org_id = await stack.create_org()
    run = await billing("org", "create", org_id, "--name", "Again", "--admin", f"other@{org_id}.test",
                        **stack_env(stack))
    assert run.code == 1 and run.out == "" and run.err_lines == [
        f"error: id: an org with id {org_id!r} already exists"], run
