from django.contrib import admin

from goals.models import Goal, GoalEvent, WorkerHeartbeat


class GoalEventInline(admin.TabularInline):
    model = GoalEvent
    extra = 0
    fields = ("created_at", "kind", "message", "actor")
    readonly_fields = fields
    can_delete = False


@admin.register(Goal)
class GoalAdmin(admin.ModelAdmin):
    list_display = ("title", "owner", "work_type", "risk", "status", "updated_at")
    list_filter = ("status", "risk", "work_type")
    search_fields = ("title", "objective")
    filter_horizontal = ("approvers",)
    raw_id_fields = ("owner",)
    inlines = [GoalEventInline]


@admin.register(GoalEvent)
class GoalEventAdmin(admin.ModelAdmin):
    list_display = ("created_at", "goal", "kind", "message", "actor")
    list_filter = ("kind",)
    raw_id_fields = ("goal", "actor")


@admin.register(WorkerHeartbeat)
class WorkerHeartbeatAdmin(admin.ModelAdmin):
    list_display = ("hostname", "seen_at")
