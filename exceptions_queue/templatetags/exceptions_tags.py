from django import template

from ..models import ExceptionRecord

register = template.Library()


@register.simple_tag
def open_exception_count() -> int:
    return ExceptionRecord.objects.filter(status__in=ExceptionRecord.ACTIVE_STATUSES).count()
