"""Step 6, ops: counters read back as metrics, the ops view of queues and alerts, health."""
