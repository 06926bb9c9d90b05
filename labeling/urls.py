from django.urls import path

from labeling import views

app_name = "labeling"
urlpatterns = [
    path("", views.home, name="home"),
    path("campaigns/<slug:slug>/start/", views.conversation_start, name="conversation_start"),
    path("conversations/<int:pk>/", views.conversation_detail, name="conversation"),
    path("conversations/<int:pk>/messages/", views.message_send, name="message_send"),
    path("conversations/<int:pk>/finish/", views.conversation_finish, name="conversation_finish"),
    path("turns/<int:pk>/candidates/", views.turn_candidates, name="turn_candidates"),
    path("turns/<int:pk>/compare/", views.comparison_submit, name="comparison_submit"),
    path("turns/<int:pk>/retry/", views.candidates_retry, name="candidates_retry"),
]
