"""What staff may do with records that must stay as they were written."""


class AddOnly:
    """Rows staff may add (through a form that calls a service) but never change or delete:
    guidelines versions, gold items, pauses."""

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class ReadOnly(AddOnly):
    """Records made by workers or by services (judgments, reports, enrollments, quiz
    answers): staff read them, nothing more."""

    def has_add_permission(self, request, obj=None):
        return False
