"""A crowd simulator: simulated workers drive a running lab through its real HTTP endpoints
(``manage.py simulate_crowd``). ``browser`` speaks HTTP and reads forms, ``annotators``
decide answers, ``worker`` is one worker's walk through the pages, ``run`` the crowd."""
