from django.contrib import admin

from approvals.models import ApprovalRequest, Decision


class DecisionInline(admin.TabularInline):
    model = Decision
    extra = 0
    fields = ("created_at", "user", "verdict", "comment", "device", "extend")
    readonly_fields = fields
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(ApprovalRequest)
class ApprovalRequestAdmin(admin.ModelAdmin):
    list_display = ("id", "goal", "kind", "status", "required_approvals", "created_at", "expires_at")
    list_filter = ("status", "kind")
    raw_id_fields = ("goal",)
    readonly_fields = ("version", "decided_at")
    inlines = [DecisionInline]


@admin.register(Decision)
class DecisionAdmin(admin.ModelAdmin):
    """The audit trail: readable, never editable."""

    list_display = ("created_at", "request", "user", "verdict", "device")
    list_filter = ("verdict",)

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
