"""Step 4, fan-out: the planner pages the audience into batches, send tasks deliver them and
record each device's outcome, the quota keeps workers under FCM's limit, the sweeper recovers
lost work. Plain functions over SQLAlchemy sessions; Celery only calls them (see ``workers/``).
"""
