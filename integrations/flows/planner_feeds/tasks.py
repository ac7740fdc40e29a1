"""django-q2 entry points of the planner feeds."""


def planner_feeds_hourly() -> dict:
    # Safe twice: a connection's cursor moves only with a successful upload, and an upload already done
    # within its interval is not due again.
    from . import planner_feeds_scheduled

    return planner_feeds_scheduled()
