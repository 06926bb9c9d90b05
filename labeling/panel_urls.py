"""The researcher's panel, under /panel/ (staff only: labeling.panel_access). Each area
adds its lines here and its link to templates/panel/_nav.html."""

from django.urls import path

from labeling import dashboard_views, model_views, panel_views, quality_panel_views, run_views

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
    path("campaigns/<slug:slug>/quality/", quality_panel_views.quality, name="quality"),
    path(
        "campaigns/<slug:slug>/quality/pause/",
        quality_panel_views.worker_pause,
        name="worker_pause",
    ),
    path(
        "campaigns/<slug:slug>/quality/pauses/<int:pause_id>/lift/",
        quality_panel_views.worker_unpause,
        name="worker_unpause",
    ),
    path("leaderboard/", quality_panel_views.leaderboard, name="leaderboard"),
    path("leaderboard/plot.svg", quality_panel_views.leaderboard_plot, name="leaderboard_plot"),
    path("runs/", run_views.runs, name="runs"),
    path("runs/export/", run_views.export_start, name="export_start"),
    path("runs/train/", run_views.training_start, name="training_start"),
    path("runs/evaluate/", run_views.evaluation_start, name="evaluation_start"),
    path("runs/distil/", run_views.distillation_start, name="distillation_start"),
    path("runs/<int:run_id>/download/", run_views.export_download, name="export_download"),
]
