"""The researcher's panel, under /panel/ (staff only: labeling.panel_access). Each area
adds its lines here and its link to templates/panel/_nav.html."""

from django.urls import path

from labeling import dashboard_views, model_views, panel_views

app_name = "panel"
urlpatterns = [
    path("", panel_views.index, name="index"),
    path("campaigns/<slug:slug>/", dashboard_views.dashboard, name="dashboard"),
    path("campaigns/<slug:slug>/activity.svg", dashboard_views.activity_svg, name="activity"),
    path("items/<int:item_id>/", dashboard_views.item, name="item"),
    path("models/", model_views.models, name="models"),
    path("models/history.svg", model_views.history_svg, name="models_history"),
    path(
        "models/<int:version_id>/reliability.svg",
        model_views.reliability_svg,
        name="model_reliability",
    ),
]
