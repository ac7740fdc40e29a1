"""Navigation context: the signed-in user's teams, shown in the layout."""
from exceptions_queue.registry import Team

TEAM_LABELS = {**dict(Team.CHOICES), "admin": "Admin"}


def navigation(request):
    user = getattr(request, "user", None)
    if not user or not user.is_authenticated:
        return {}
    groups = set(user.groups.values_list("name", flat=True))
    # Shown as words ("E-commerce", not "ecommerce"), in a fixed order.
    return {"user_teams": [label for name, label in TEAM_LABELS.items() if name in groups]}
