from django.urls import path

from integrations.sync.views import IntakeView

urlpatterns = [
    # Any path may belong to a flow (default /zdrav/booked and /zdrav/mc), or be a flow's
    # path plus a token segment; the view looks it up (cached, see flow_routes) and
    # answers 404, for any method, for paths no flow serves.
    path("<path:endpoint>", IntakeView.as_view(), name="intake"),
]
