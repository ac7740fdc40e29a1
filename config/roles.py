"""Roles are Django groups (created by a migration): ops, finance, ecommerce, admin. The one source
of who may do what: `has_role` for templates and branches, `role_required` on views."""
from functools import wraps

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import PermissionDenied

OPS, FINANCE, ECOMMERCE, ADMIN = "ops", "finance", "ecommerce", "admin"
ROLES = (OPS, FINANCE, ECOMMERCE, ADMIN)


def user_roles(user: AbstractBaseUser) -> set[str]:
    if not user.is_authenticated:
        return set()
    cached = getattr(user, "_ledgerline_roles", None)
    if cached is None:
        cached = set(user.groups.values_list("name", flat=True)) & set(ROLES)
        if user.is_superuser:
            cached.add(ADMIN)
        user._ledgerline_roles = cached
    return cached


def has_role(user, *roles: str) -> bool:
    """Admin may do everything; otherwise the user needs one of the roles."""
    mine = user_roles(user)
    return ADMIN in mine or bool(mine & set(roles))


def role_required(*roles: str, message: str = ""):
    """A view only these roles (or an admin) may call; others get a 403 saying who may."""
    def decorator(view):
        @wraps(view)
        def wrapped(request, *args, **kwargs):
            if not has_role(request.user, *roles):
                who = ", ".join(r for r in (*roles, ADMIN)) if roles else ADMIN
                raise PermissionDenied(message or f"Only {who} may do this.")
            return view(request, *args, **kwargs)
        return wrapped
    return decorator
