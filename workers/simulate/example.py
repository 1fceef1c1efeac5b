"""The commented example scenario printed by `billing simulate --example` (kept free of imports,
so printing it is instant). tests/simulate runs it."""

EXAMPLE = """\
# A `billing simulate` scenario (SIMULATE.md). Run it with:
#   billing simulate scenario.yaml          # a readable timeline
#   billing simulate scenario.yaml --json   # the timeline as JSON
# The real workflows and activities run on Temporal's time-skipping test server, with a fresh
# SQLite database (or BILLING_DATABASE_URL, which must hold no org; the simulated one is removed
# afterwards) and a local SMTP capture server. A run stops after BILLING_SIMULATE_TIMEOUT seconds
# of real time (default 300).

description: "A trial converts to Standard; the first charge is declined; a new card pays it"

start: "2026-01-31T09:00:00+00:00"   # the simulated clock starts here (with a UTC offset)
until: "P45D"                        # ISO-8601 duration after start: P10D, P1M, PT36H, P1Y2M3DT4H

policy:                              # optional: overrides of the configured policy
  trial_days: 15
  trial_reminder_days: [3, 1]        # reminder e-mails, days before the trial ends
  retry_days: [1, 3, 5, 7]           # dunning retries, days after the failed renewal
  large_account_licences: 100        # from this many licences, no automatic downgrade: escalation
  # billing_staff: [rina@billing.test]   # who counts as staff; omitted = every requested_by does

org:
  id: acme                           # lowercase letters, digits, '-' and '_'
  name: "Acme Mail"                  # optional, shown in e-mails (default: the id)
  admin_email: admin@acme.test       # the admin is a user (added if not listed)
  locale: en                         # en | id
  currency: USD                      # USD (cents) | IDR (whole rupiah)
  plan: trial                        # "trial" or a plan id: free, mail_lite_5, mail_lite_10,
                                     #   mail_premium, standard, professional
  # cycle: monthly                   # monthly | yearly (required for a paid plan)
  # licences: 3                      # paid plans; default: the number of users
  # card: "4242424242424242"         # optional sandbox card (see below)
  auto_allocate_storage: false
  users:
    - {email: admin@acme.test, storage_gb: 1}
    - {email: b@acme.test, storage_gb: 12}

# Sandbox cards: 4242424242424242 always pays; 4000000000000341 declines (card_declined);
# 4000000000009995 declines (insufficient_funds); 4000000000000002 is rejected when set.

actions:                             # each at an ISO-8601 duration after start; same instant: file order
  - {at: P10D, do: upgrade, plan: standard, cycle: monthly}         # takes effect when the trial ends
  - {at: P10D, do: update_card, card: "4000000000000341"}           # a card that will decline
  - {at: P11D, do: update_card, card: "4000000000000002"}           # rejected: shows as action_rejected
  - {at: P17D, do: update_card, card: "4242424242424242"}           # retries the open invoice at once
  - {at: P20D, do: add_licences, count: 1}                          # pro rata to the renewal date
  - {at: P21D, do: add_user, email: c@acme.test, storage_gb: 0}
  - {at: P22D, do: set_usage, user: b@acme.test, storage_gb: 40}    # over the 30 GB quota: blocked
  - {at: P23D, do: buy_storage, unit_gb: 25, count: 1}
  - {at: P23D, do: allocate_storage, user: b@acme.test, unit_gb: 25}  # 55 GB quota: unblocked
  - {at: P40D, do: request_downgrade, plan: mail_lite_10, requested_by: rina@billing.test,
     reason: "fewer features needed"}        # 3 days before the renewal: outside the 15-30 day window
# Other actions: request_downgrade {plan, licences?, requested_by, reason?},
# cancel_downgrade {requested_by}, cancel {requested_by}, undo_cancel {requested_by},
# retry_payment {requested_by}, switch_to_yearly, switch_to_monthly (a yearly org: from its renewal),
# cancel_switch_to_monthly, remove_storage {unit_gb, count}, auto_allocate {setting: "on"|"off"},
# buy_addon {addon}, remove_addon {addon}, change_tier {contacts}, set_contacts {contacts},
# resolve_escalation {action: extend|downgrade|retry, requested_by, reason, extend_days?}.
# Every action also takes requested_by and reason. Reports (set_usage, set_contacts) also take
# report_id? and reported_at? (a duration after start): an older or repeated report changes
# nothing; via: signal sends one as a usage feed does (never answered, so never action_rejected).
"""
