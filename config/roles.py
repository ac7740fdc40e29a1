"""Roles are Django groups (created by a migration): ops, finance, ecommerce, admin."""
from django.contrib.auth.models import AbstractBaseUser

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
