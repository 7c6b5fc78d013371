"""Lofty leads and members feed core.participant, and their calls, texts and emails core.contact_log, beside FUB's:
every row once, pointing at a participant that exists, and a trashed lead soft-deleted there too."""

from __future__ import annotations

import dagster as dg
import sqlalchemy as sa

from sync_pipelines.defs.core.assets import contact_log, contact_log_has_no_orphans, participant
from sync_pipelines.lib.resources import WarehouseResource
from sync_pipelines_tests.test_defs.lofty.conftest import LoftyWorld


def _rebuild(instance: dg.DagsterInstance) -> dg.ExecuteInProcessResult:
    result = dg.materialize([participant, contact_log, contact_log_has_no_orphans], instance=instance,
                            resources={"warehouse": WarehouseResource()})  # fmt: skip
    assert result.success and all(c.passed for c in result.get_asset_check_evaluations())
    return result


def test_leads_members_and_activities_feed_participant_and_contact_log(
    world: LoftyWorld, dagster_instance: dg.DagsterInstance
) -> None:
    for entity in ("users", "leads", "tags", "activities"):
        world.backfill(entity)
    _rebuild(dagster_instance)
    members = len(world.core_ids("users"))
    with world.engine.connect() as conn:
        kinds = dict(conn.execute(sa.text(
            "SELECT kind, count(*) FROM core.participant WHERE integration = 'lofty' AND deleted_at IS NULL GROUP BY 1"
        )).all())  # fmt: skip
        logs = conn.execute(sa.text(
            "SELECT count(*), count(DISTINCT kind), bool_and(kind IN ('call', 'text', 'email')), "
            "bool_and(summary IS NOT NULL) FROM core.contact_log WHERE integration = 'lofty'"
        )).one()  # fmt: skip
        named = conn.execute(sa.text(
            "SELECT bool_and(name IS NOT NULL) FROM core.participant WHERE integration = 'lofty'"
        )).scalar()  # fmt: skip
    assert kinds == {"lead": len(world.live_leads()), "agent": members}
    assert logs == (world.sim.activity_count("acme"), 3, True, True)
    assert named
    # A lead trashed at the source and gone from a complete re-read is soft-deleted in participant too.
    gone = world.sim.mutate("acme", "leads", deletes=1)["deleted"][0]
    world.backfill("leads")
    _rebuild(dagster_instance)
    deleted = world.scalar(
        "SELECT deleted_at IS NOT NULL FROM core.participant WHERE integration = 'lofty' AND source_id = :s",
        s=str(gone),
    )
    assert deleted is True
