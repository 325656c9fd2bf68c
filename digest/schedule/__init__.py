"""Scheduling: the crontab dialect (:mod:`.crontab`, no dependencies) and the daemon loop on
APScheduler (:mod:`.daemon`), kept apart so checking a config never imports the scheduler."""
