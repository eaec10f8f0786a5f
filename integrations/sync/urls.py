from django.urls import path

from integrations.sync.views import IntakeView

urlpatterns = [
    # Any path may belong to a flow (default /zdrav/booked and /zdrav/mc); the view looks
    # it up and answers 404 for paths no flow serves.
    path("<path:endpoint>", IntakeView.as_view(), name="intake"),
]
