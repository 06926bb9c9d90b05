"""The researcher's panel, under /panel/ (staff only: labeling.panel_access). Each area
adds its lines here and its link to templates/panel/_nav.html."""

from django.urls import path

from labeling import panel_views

app_name = "panel"
urlpatterns = [
    path("", panel_views.index, name="index"),
]
