import pytest

from domain.policy import Policy, PolicyError


def test_defaults_match_domain_md():
    p = Policy()
    assert p.trial_days == 15
    assert p.trial_reminder_days == (3, 1)
    assert p.retry_days == (1, 3, 5, 7)
    assert (p.downgrade_window_min_days, p.downgrade_window_max_days) == (15, 30)
    assert p.large_account_licences == 100
    assert (p.escalation_first_response_hours, p.escalation_determination_hours) == (3, 8)


@pytest.mark.parametrize("kwargs, message", [
    ({"trial_days": 0, "trial_reminder_days": ()}, "trial_days must be positive, got 0"),
    ({"trial_days": 3}, "trial_reminder_days must each be between 1 and trial_days - 1"),  # 3-day reminder
    ({"trial_days": -3, "trial_reminder_days": ()}, "trial_days must be positive, got -3"),
    ({"trial_reminder_days": (3, 0)}, "trial_reminder_days must each be between 1 and trial_days - 1"),
    ({"trial_reminder_days": (15,)}, "trial_reminder_days must each be between 1 and trial_days - 1"),
    ({"retry_days": ()}, "retry_days must be positive, strictly increasing days, got []"),
    ({"retry_days": (0, 3)}, "retry_days must be positive, strictly increasing days, got [0, 3]"),
    ({"retry_days": (3, 1)}, "retry_days must be positive, strictly increasing days, got [3, 1]"),
    ({"retry_days": (1, 1, 3)}, "retry_days must be positive, strictly increasing days, got [1, 1, 3]"),
    ({"downgrade_window_min_days": 31}, "downgrade window must satisfy 0 <= min days <= max days"),
    ({"downgrade_window_min_days": -1}, "downgrade window must satisfy 0 <= min days <= max days"),
    ({"large_account_licences": 0}, "large_account_licences must be positive"),
])
def test_invalid_policy(kwargs, message):
    with pytest.raises(ValueError) as err:
        Policy(**kwargs)
    assert str(err.value) == message


@pytest.mark.parametrize("kwargs, field", [
    ({"staff_notify_email": "not an email"}, "staff_notify_email"),
    ({"staff_notify_email": "billing-staff"}, "staff_notify_email"),
    ({"billing_staff": ("rina@billing.test", "budi")}, "billing_staff"),
])
def test_staff_addresses_must_be_addresses(kwargs, field):
    """The escalation e-mail goes to staff_notify_email: to no address it is retried for ever."""
    with pytest.raises(PolicyError) as err:
        Policy(**kwargs)
    assert [name for name, _ in err.value.problems] == [field]
    assert "is not a valid e-mail address" in str(err.value)


def test_a_local_mailbox_is_an_address():
    assert Policy(staff_notify_email="billing-staff@localhost", billing_staff=("billing@localhost",))


def test_all_problems_reported_together():
    with pytest.raises(ValueError) as err:
        Policy(trial_days=0, retry_days=(), large_account_licences=0)
    assert str(err.value) == ("trial_days must be positive, got 0; "
                              "trial_reminder_days must each be between 1 and trial_days - 1; "
                              "retry_days must be positive, strictly increasing days, got []; "
                              "large_account_licences must be positive")


def test_valid_custom_policy():
    p = Policy(trial_days=7, trial_reminder_days=(6, 1), retry_days=(2,), downgrade_window_min_days=0,
               downgrade_window_max_days=0, large_account_licences=1)
    assert p.retry_days == (2,)


def test_is_staff():
    p = Policy(billing_staff=("Rina@Billing.test",))
    assert p.is_staff("rina@billing.test")
    assert p.is_staff("  RINA@billing.TEST ")
    assert not p.is_staff("admin@acme.test")


def test_default_staff_list_is_empty_and_none_means_anyone():
    assert not Policy().is_staff("rina@billing.test")
    assert Policy(billing_staff=None).is_staff("anyone@example.test")
