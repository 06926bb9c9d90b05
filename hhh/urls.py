from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from labeling.forms import LoginForm
from labeling.health import healthz

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("admin/", admin.site.urls),
    path("panel/", include("labeling.panel_urls")),
    path(
        "accounts/login/",
        auth_views.LoginView.as_view(authentication_form=LoginForm),
        name="login",
    ),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("", include("labeling.urls")),
]
