"""How Dagster behaves with our partitioning at scale: one asset partitioned by 62 months x N accounts (a monthly
dimension crossed with a dynamic account dimension, as lib/integration/builders.py builds them), on Postgres storage
(an embedded server of this script's own, as in a deployment).

For each N it measures:
- adding N dynamic partitions (what the accounts sensor does as accounts are added),
- loading the definitions (the code location's work at startup),
- listing every partition key (what the UI's partition views and a "backfill all" ask for),
- the partition status query (materialized / failed / in progress per partition, what the asset page shows), cold
  (no cache) after one account's 62 months were materialized,
- planning a backfill of every partition (what the daemon does before the first run).

Usage: python bench/bench_partitions.py [--accounts 100,1000,2000] [--months 62]
Results go to docs/partitions.md by hand, with date and machine.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import psycopg

T = TypeVar("T")


def timed(fn: Callable[[], T]) -> tuple[T, float]:
    started = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - started


def build_asset(months: int) -> tuple[Any, Any, Any]:
    import dagster as dg

    # 62 months ending this month (end_offset=1 includes the current one, as our partitions do).
    now = time.gmtime()
    start_index = now.tm_year * 12 + (now.tm_mon - 1) - (months - 1)
    start = f"{start_index // 12:04d}-{start_index % 12 + 1:02d}"
    accounts = dg.DynamicPartitionsDefinition(name="bench_accounts")
    periods = dg.MonthlyPartitionsDefinition(start_date=start, fmt="%Y-%m", end_offset=1)
    partitions = dg.MultiPartitionsDefinition({"period": periods, "account": accounts})

    @dg.asset(partitions_def=partitions, key=["bench", "core", "people"])
    def people() -> None:
        return None

    return people, partitions, accounts


def run(accounts_n: int, months: int, storage_url: str) -> dict[str, float | int]:
    import dagster as dg
    from dagster._core.definitions.partitions.subset import AllPartitionsSubset  # noqa: F401 (import cost out)
    from dagster._core.execution.asset_backfill import AssetBackfillData
    from dagster._core.storage.partition_status_cache import get_and_update_asset_status_cache_value

    out: dict[str, float | int] = {"accounts": accounts_n}
    with dg.instance_for_test(overrides={"storage": {"postgres": {"postgres_url": storage_url}}}) as instance:
        asset, partitions, accounts_def = build_asset(months)
        names = [f"account_{i:05d}" for i in range(accounts_n)]
        _, out["add_dynamic_partitions_s"] = timed(lambda: instance.add_dynamic_partitions(accounts_def.name, names))

        def load() -> Any:
            defs = dg.Definitions(assets=[asset])
            return defs.resolve_asset_graph()

        asset_graph, out["load_definitions_s"] = timed(load)
        keys, out["list_partition_keys_s"] = timed(
            lambda: partitions.get_partition_keys(dynamic_partitions_store=instance)
        )
        out["partitions"] = len(keys)

        # One account's history materialized, as after its onboarding backfill.
        for key in [k for k in keys if k.keys_by_dimension["account"] == names[0]]:
            instance.report_runless_asset_event(dg.AssetMaterialization(asset.key, partition=key))
        value, out["status_query_cold_s"] = timed(
            lambda: get_and_update_asset_status_cache_value(instance, asset.key, partitions, instance)
        )
        out["materialized"] = (
            value.deserialize_materialized_partition_subsets(partitions).get_partition_keys().__len__()
        )
        _, out["status_query_cached_s"] = timed(
            lambda: get_and_update_asset_status_cache_value(instance, asset.key, partitions)
        )

        def plan() -> Any:
            return AssetBackfillData.from_asset_partitions(
                asset_graph=asset_graph,
                partition_names=None,
                asset_selection=[asset.key],
                dynamic_partitions_store=instance,
                backfill_start_timestamp=time.time(),
                all_partitions=True,
            )

        _, out["plan_backfill_all_s"] = timed(plan)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--accounts", default="100,1000,2000")
    parser.add_argument("--months", type=int, default=62)
    args = parser.parse_args()

    from sync_pipelines.lib import db

    home = Path(tempfile.mkdtemp(prefix="bench_partitions_"))
    os.environ.pop("SYNC_MODE", None)
    server = db.start_embedded(home)
    try:
        print(f"# {time.strftime('%Y-%m-%d')} {platform.node()} {platform.processor() or platform.machine()}, "
              f"{os.cpu_count()} CPUs, Python {platform.python_version()}")  # fmt: skip
        print(
            "| accounts | partitions | add accounts | load defs | list keys | status cold | status cached | plan all |"
        )
        print("|---:|---:|---:|---:|---:|---:|---:|---:|")
        for n in [int(v) for v in args.accounts.split(",")]:
            name = f"bench_partitions_{n}"
            with psycopg.connect(server.uri("postgres"), autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
                conn.execute(f'CREATE DATABASE "{name}"')
            r = run(n, args.months, server.uri(name, "psycopg2"))
            print(
                f"| {r['accounts']:,} | {r['partitions']:,} | {r['add_dynamic_partitions_s']:.2f} s | "
                f"{r['load_definitions_s']:.2f} s | {r['list_partition_keys_s']:.2f} s | "
                f"{r['status_query_cold_s']:.2f} s | {r['status_query_cached_s']:.2f} s | "
                f"{r['plan_backfill_all_s']:.2f} s |",
                flush=True,
            )
    finally:
        db.stop_embedded(home)


if __name__ == "__main__":
    main()
