"""Home (a dashboard of what needs attention) and the unauthenticated health endpoint."""
from django.contrib.auth.decorators import login_not_required
from django.db import connection
from django.http import JsonResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from exceptions_queue.models import ExceptionRecord
from integrations.models import InboundEvent, OrderLink


@require_GET
def home(request):
    from django.db.models import Count

    by_state = {row["state"]: row["n"] for row in OrderLink.objects.values("state").annotate(n=Count("id"))}
    open_by_team = {
        row["team"]: row["n"]
        for row in ExceptionRecord.objects.filter(status__in=ExceptionRecord.ACTIVE_STATUSES)
        .values("team")
        .annotate(n=Count("id"))
    }
    ignored = [(row["topic"], row["n"]) for row in InboundEvent.objects.filter(status=InboundEvent.Status.IGNORED)
               .values("topic").annotate(n=Count("id")).order_by("-n", "topic")]
    return render(
        request,
        "home.html",
        {
            "orders_by_state": [(label, by_state.get(value, 0), value) for value, label in OrderLink.State.choices],
            "open_by_team": open_by_team,
            "pending_events": InboundEvent.objects.filter(status=InboundEvent.Status.PENDING).count(),
            "ignored_events": sum(n for _, n in ignored),
            "ignored_topics": ignored[:8],
        },
    )


@login_not_required
@require_GET
def health(request):
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return JsonResponse({"status": "ok", "database": "ok"})
    except Exception as exc:  # the health check reports, it does not crash
        return JsonResponse({"status": "error", "database": str(exc)}, status=503)
