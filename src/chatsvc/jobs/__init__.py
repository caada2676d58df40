"""Background jobs: the job table is the source of truth (models, service), a queue only triggers
(queue), and the runner claims, runs and records (runner). See chatsvc.worker for the arq worker."""
