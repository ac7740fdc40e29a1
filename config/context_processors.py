"""Navigation context: the signed-in user's teams, shown in the layout."""
from exceptions_queue.registry import Team

TEAM_GROUPS = {Team.OPS, Team.FINANCE, Team.ECOMMERCE, "admin"}


def navigation(request):
    user = getattr(request, "user", None)
    if not user or not user.is_authenticated:
        return {}
    teams = sorted(TEAM_GROUPS & set(user.groups.values_list("name", flat=True)))
    return {"user_teams": teams}
