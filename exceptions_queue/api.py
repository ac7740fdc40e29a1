"""REST API over the exceptions (list, detail, actions), for other tools: /exceptions/api/exceptions/."""
from __future__ import annotations

from django.contrib.auth.decorators import login_not_required
from django.contrib.auth import get_user_model
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.pagination import CursorPagination
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.routers import SimpleRouter

from config.roles import has_role
from config.safe_json import SafeJSONParser

from .filters import ExceptionFilter
from .forms import team_members
from .models import BulkJob, ExceptionActivity, ExceptionRecord
from .services import (
    exception_assign,
    exception_comment,
    exception_ignore,
    exception_reopen,
    exception_resolve,
    exceptions_retry_queue,
)


class ExceptionActivitySerializer(serializers.ModelSerializer):
    actor = serializers.CharField(source="actor_name", read_only=True)

    class Meta:
        model = ExceptionActivity
        fields = ["at", "actor", "action", "note"]


class ExceptionSerializer(serializers.ModelSerializer):
    assignee = serializers.SlugRelatedField(slug_field="username", read_only=True)
    order_number = serializers.CharField(source="order.order_number", default=None, read_only=True)
    is_overdue = serializers.BooleanField(read_only=True)

    class Meta:
        model = ExceptionRecord
        fields = [
            "id", "type_code", "team", "severity", "system", "status", "title", "fingerprint", "sku", "order",
            "order_number", "occurrences", "first_seen", "last_seen", "due_at", "is_overdue", "assignee",
            "resolution_note", "resolved_at",
        ]


class ExceptionDetailSerializer(ExceptionSerializer):
    runbook = serializers.SerializerMethodField()
    activity = ExceptionActivitySerializer(many=True, read_only=True)

    class Meta(ExceptionSerializer.Meta):
        fields = ExceptionSerializer.Meta.fields + [
            "key", "message", "last_error", "context", "retry_args", "runbook", "activity",
        ]

    def get_runbook(self, obj) -> str:
        exc_type = obj.exception_type
        return exc_type.runbook if exc_type else ""


NOTE_MAX_LENGTH = 2000


class NoteSerializer(serializers.Serializer):
    note = serializers.CharField(max_length=NOTE_MAX_LENGTH)


class OptionalNoteSerializer(serializers.Serializer):
    note = serializers.CharField(max_length=NOTE_MAX_LENGTH, required=False, allow_blank=True, default="")


class AssignSerializer(serializers.Serializer):
    assignee = serializers.CharField(
        allow_blank=True, max_length=get_user_model()._meta.get_field("username").max_length,
        help_text="username, 'me', or blank to unassign",
    )


# Bodies are read by config.safe_json: JSON nested too deep, NaN/Infinity or a NUL character is a
# 400 {"error", "message"}, never a 500 further down.
PARSERS = [SafeJSONParser, FormParser, MultiPartParser]


class BulkJobSerializer(serializers.ModelSerializer):
    class Meta:
        model = BulkJob
        fields = ["id", "action", "label", "status", "total", "done", "succeeded", "failed", "created_at", "finished_at"]


class NewestFirst(CursorPagination):
    # a cursor, not page numbers: page N costs the same as page 1 over a million rows
    ordering = ("-last_seen", "-id")
    page_size = 50


class ExceptionViewSet(viewsets.ReadOnlyModelViewSet):
    """Exceptions; everyone signed in reads, the owning team (or admin) acts."""

    queryset = ExceptionRecord.objects.select_related("order", "assignee")
    filterset_class = ExceptionFilter
    pagination_class = NewestFirst
    parser_classes = PARSERS

    def get_serializer_class(self):
        return ExceptionDetailSerializer if self.action != "list" else ExceptionSerializer

    def get_queryset(self):
        qs = super().get_queryset()
        if self.action != "list":
            qs = qs.prefetch_related("activity__actor")
        return qs

    def _rw_object(self) -> ExceptionRecord:
        record = self.get_object()
        if not has_role(self.request.user, record.team):
            raise PermissionDenied("Only the owning team may act on this exception.")
        return record

    def _answer(self, record, code=status.HTTP_200_OK):
        record = self.get_queryset().get(pk=record.pk)
        return Response(ExceptionDetailSerializer(record, context=self.get_serializer_context()).data, status=code)

    def _note(self, serializer_class=NoteSerializer) -> str:
        serializer = serializer_class(data=self.request.data)
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data["note"]

    @extend_schema(request=AssignSerializer, responses=ExceptionDetailSerializer)
    @action(detail=True, methods=["post"])
    def assign(self, request, pk=None):
        record = self._rw_object()
        serializer = AssignSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        value = serializer.validated_data["assignee"].strip()
        assignee = None
        if value == "me":
            assignee = request.user
        elif value:
            assignee = team_members(record.team).filter(username=value).first()
            if assignee is None:
                raise ValidationError({"assignee": "Assign to a member of the owning team."})
        exception_assign(record=record, assignee=assignee, actor=request.user)
        return self._answer(record)

    @extend_schema(request=NoteSerializer, responses=ExceptionDetailSerializer)
    @action(detail=True, methods=["post"])
    def comment(self, request, pk=None):
        record = self._rw_object()
        exception_comment(record=record, note=self._note(), actor=request.user)
        return self._answer(record)

    @extend_schema(request=NoteSerializer, responses=ExceptionDetailSerializer)
    @action(detail=True, methods=["post"])
    def resolve(self, request, pk=None):
        record = self._rw_object()
        exception_resolve(record=record, note=self._note(), actor=request.user)
        return self._answer(record)

    @extend_schema(request=NoteSerializer, responses=ExceptionDetailSerializer)
    @action(detail=True, methods=["post"])
    def ignore(self, request, pk=None):
        record = self._rw_object()
        exception_ignore(record=record, reason=self._note(), actor=request.user)
        return self._answer(record)

    @extend_schema(request=OptionalNoteSerializer, responses=ExceptionDetailSerializer)
    @action(detail=True, methods=["post"])
    def reopen(self, request, pk=None):
        record = self._rw_object()
        exception_reopen(record=record, actor=request.user, note=self._note(OptionalNoteSerializer))
        return self._answer(record)

    @extend_schema(request=None, responses={202: BulkJobSerializer})
    @action(detail=True, methods=["post"])
    def retry(self, request, pk=None):
        """Queues the retry; poll the returned job (or the exception) for the outcome."""
        record = self._rw_object()
        job = exceptions_retry_queue(records=[record], actor=request.user, label=record.title)
        return Response(BulkJobSerializer(job).data, status=status.HTTP_202_ACCEPTED)


class BulkJobViewSet(viewsets.ReadOnlyModelViewSet):
    queryset = BulkJob.objects.all()
    serializer_class = BulkJobSerializer
    parser_classes = PARSERS


router = SimpleRouter()
router.register("exceptions", ExceptionViewSet, basename="api-exception")
router.register("jobs", BulkJobViewSet, basename="api-exception-job")

urlpatterns = router.urls
for pattern in urlpatterns:
    # DRF authenticates (session or token) and answers 401/403 itself; the site-wide
    # login redirect would turn a token client's request into an HTML login page.
    pattern.callback = login_not_required(pattern.callback)
