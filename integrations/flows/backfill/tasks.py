"""django-q2 entry points of the backfill and of the connections' stored health."""


def backfill_run_task(run_id: int) -> str:
    # Safe twice: the run is claimed by a conditional update and resumes from its cursor; each order's
    # event has a unique inbox id.
    from .runs import backfill_run_execute

    return backfill_run_execute(run_id=run_id)


def backfill_runs_resume() -> int:
    # Safe twice: only runs whose lease expired are claimed, one worker each.
    from .runs import backfill_runs_resume as resume

    return resume()


def connections_health_refresh() -> int:
    # Safe twice: each check replaces the connection's one stored health row.
    from .health_checks import connections_health_refresh_all

    return connections_health_refresh_all()
