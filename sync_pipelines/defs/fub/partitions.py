"""period_key (month of creation at the source) crossed with the account, fed by bridge.accounts."""

from __future__ import annotations

import dagster as dg

PERIOD_START = "2021-11"

fub_accounts = dg.DynamicPartitionsDefinition(name="fub_accounts")
periods = dg.MonthlyPartitionsDefinition(start_date=PERIOD_START, fmt="%Y-%m", end_offset=1)
fub_period_account = dg.MultiPartitionsDefinition({"period": periods, "account": fub_accounts})


def by_account(partition_keys: list[str]) -> dict[str, list[str]]:
    """Partition keys of a (possibly ranged) run, grouped: account -> its periods (empty for account-only)."""
    grouped: dict[str, set[str]] = {}
    for key in partition_keys:
        dims = getattr(key, "keys_by_dimension", None)
        if dims is not None:
            grouped.setdefault(dims["account"], set()).add(dims["period"])
        elif "|" in key:
            account, period = key.split("|", 1)  # dimensions in name order: account, period
            grouped.setdefault(account, set()).add(period)
        else:
            grouped.setdefault(key, set())
    return {account: sorted(periods) for account, periods in grouped.items()}
