from django.urls import path

from labeling import (
    item_views,
    onboarding_views,
    prolific_views,
    quality_views,
    queue_views,
    views,
)

app_name = "labeling"
urlpatterns = [
    path("", views.home, name="home"),
    path("campaigns/<slug:slug>/start/", views.conversation_start, name="conversation_start"),
    path("conversations/<int:pk>/", views.conversation_detail, name="conversation"),
    path("conversations/<int:pk>/messages/", views.message_send, name="message_send"),
    path("conversations/<int:pk>/finish/", views.conversation_finish, name="conversation_finish"),
    path("turns/<int:pk>/candidates/", views.turn_candidates, name="turn_candidates"),
    path("turns/<int:pk>/stream/", views.turn_stream, name="turn_stream"),
    path("turns/<int:pk>/compare/", views.comparison_submit, name="comparison_submit"),
    path("turns/<int:pk>/retry/", views.candidates_retry, name="candidates_retry"),
    path("turns/<int:pk>/report/", quality_views.turn_report, name="turn_report"),
    # Ranking and re-judge tasks: the next item served, and the answer about one.
    path("tasks/<slug:slug>/", item_views.item_next, name="item_next"),
    path(
        "tasks/<slug:slug>/items/<int:pk>/rank/",
        item_views.ranking_submit,
        name="ranking_submit",
    ),
    path(
        "tasks/<slug:slug>/items/<int:pk>/judge/",
        item_views.rejudge_submit,
        name="rejudge_submit",
    ),
    path(
        "tasks/<slug:slug>/items/<int:pk>/report/",
        quality_views.item_report,
        name="item_report",
    ),
    # The crowd operation: one entry per campaign, then consent, quiz, sets.
    path("campaigns/<slug:slug>/next/", queue_views.task_next, name="task_next"),
    path("campaigns/<slug:slug>/skip/", queue_views.task_skip, name="task_skip"),
    path("campaigns/<slug:slug>/sets/", queue_views.set_start, name="set_start"),
    path("campaigns/<slug:slug>/done/", prolific_views.set_done, name="set_done"),
    path("campaigns/<slug:slug>/consent/", onboarding_views.consent, name="consent"),
    path("campaigns/<slug:slug>/withdraw/", onboarding_views.withdraw, name="withdraw"),
    path("campaigns/<slug:slug>/quiz/", onboarding_views.quiz, name="quiz"),
    path("campaigns/<slug:slug>/paused/", quality_views.paused, name="paused"),
    path("prolific/<slug:slug>/", prolific_views.prolific_entry, name="prolific_entry"),
]
