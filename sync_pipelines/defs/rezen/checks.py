"""The seeds' tc_rezen / tc_ad / tc_mismatch reconciliation as asset checks: per agent (one account is one agent's
key) and lifecycle group, reZEN's own transaction and listing counts against the warehouse's live rows. The
metadata names every mismatching (account, group) with both counts, so an operator knows where to look."""

import dagster as dg

from sync_pipelines.defs.rezen import lifecycle
from sync_pipelines.lib import accounts
from sync_pipelines.lib.integration.declaration import Integration
from sync_pipelines.lib.resources import WarehouseResource

CHECK_NAME = "lifecycle_group_counts_match_rezen"


def group_mismatches(resource: object, warehouse: WarehouseResource, entity: str) -> tuple[list[dict], int]:
    """(mismatching rows, rows compared): one row per account and lifecycle group of `entity`."""
    engine = warehouse.engine()
    mismatches: list[dict] = []
    compared = 0
    for account in accounts.list_accounts(engine, "rezen"):
        client = resource.client_for(engine, account)  # type: ignore[attr-defined]
        source = client.transaction_counts_by_group() if entity == "transactions" else client.listing_counts_by_group()
        with warehouse.raw_connection() as conn:
            ours = lifecycle.warehouse_counts_by_group(conn, entity, account.id)
        for group in sorted(set(source) | set(ours)):
            compared += 1
            if source.get(group, 0) != ours.get(group, 0):
                mismatches.append({"account": account.name, "group": group, "rezen": source.get(group, 0),
                                   "warehouse": ours.get(group, 0)})  # fmt: skip
    return mismatches, compared


def _lifecycle_check(integration: Integration, entity: str) -> dg.AssetChecksDefinition:
    @dg.asset_check(
        name=CHECK_NAME,
        asset=dg.AssetKey([integration.name, "core", entity]),
        required_resource_keys={integration.resource_key, "warehouse"},
        description=f"Per agent and lifecycle group: reZEN's count of {entity} equals the live rows in core "
        "(the seeds' tc_rezen / tc_ad / tc_mismatch).",
    )
    def _check(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
        resource = getattr(context.resources, integration.resource_key)
        mismatches, compared = group_mismatches(resource, context.resources.warehouse, entity)
        return dg.AssetCheckResult(
            passed=not mismatches,
            metadata={"groups_compared": compared, "mismatching_groups": str(mismatches or "none")},
        )

    return _check


def lifecycle_checks(integration: Integration) -> list[dg.AssetChecksDefinition]:
    return [_lifecycle_check(integration, entity) for entity in ("transactions", "listings")]
